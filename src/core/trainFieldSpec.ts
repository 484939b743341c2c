/** The shape of one entry of TRAIN_FIELDS (src/core/generated/trainFields.ts, from the events schema). */
export interface TrainFieldChart {
  /** The y axis title. */
  axis: string;
  /** Drawn raw (faded) under a debiased-EMA smoothed line. */
  smoothed: boolean;
  /** Follows the dashboard's log-scale switch. */
  logScale: boolean;
  /** The big card. */
  tall: boolean;
}

export interface TrainFieldSpec {
  key: string;
  title: string;
  required: boolean;
  /** null in the event means "not measured": NaN in a column. */
  nullable: boolean;
  /** How the dashboard draws it; null: a column only (CSV). */
  chart: TrainFieldChart | null;
}
