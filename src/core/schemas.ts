// The contracts between the extension and the trainer (docs/ARCHITECTURE.md "Contracts"), loaded once and
// compiled once. esbuild bundles the JSON, so dist/ needs no schemas/ folder at run time.
import Ajv, { type ValidateFunction, type ErrorObject } from 'ajv';
import experimentSchema from '../../schemas/experiment.schema.json';
import eventsSchema from '../../schemas/events.schema.json';
import statusSchema from '../../schemas/status.schema.json';
import metaSchema from '../../schemas/meta.schema.json';
import slurmSchema from '../../schemas/slurm.schema.json';
import analysisSchema from '../../schemas/analysis.schema.json';
import estimateSchema from '../../schemas/estimate.schema.json';
import type { ExperimentConfig } from './generated/experiment';
import type { RunEvent } from './generated/events';
import type { RunStatus } from './generated/status';
import type { RunMeta } from './generated/meta';
import type { SlurmRecord } from './generated/slurm';
import type { AnalysisConfig } from './generated/analysis';
import type { EstimateItem, PlannedRunEstimate } from './generated/estimate';

export { experimentSchema, eventsSchema, statusSchema, metaSchema, slurmSchema, analysisSchema, estimateSchema };
export type { ErrorObject };

let ajvInstance: Ajv | undefined;

/** One Ajv for all schemas: draft-07 (Ajv 8's default), every error (allErrors), the failing schema kept (verbose). */
export function ajv(): Ajv {
  if (!ajvInstance) {
    // strict: false because the schemas use `default` next to `$ref` and nullable types with `minimum`,
    // both valid draft-07 that Ajv's strict mode only warns about. discriminator: an eval task is one
    // of several shapes chosen by its `type`; Ajv then checks only that shape and reports its errors.
    ajvInstance = new Ajv({ allErrors: true, verbose: true, strict: false, discriminator: true });
    for (const s of [experimentSchema, eventsSchema, statusSchema, metaSchema, slurmSchema, analysisSchema, estimateSchema]) ajvInstance.addSchema(s as object);
  }
  return ajvInstance;
}

function compiled<T>(id: string): ValidateFunction<T> {
  const v = ajv().getSchema<T>(id);
  if (!v) throw new Error(`schema not found: ${id}`);
  return v;
}

export const validateExperiment = (): ValidateFunction<ExperimentConfig> => compiled<ExperimentConfig>(experimentSchema.$id);
export const validateEvent = (): ValidateFunction<RunEvent> => compiled<RunEvent>(eventsSchema.$id);
export const validateStatus = (): ValidateFunction<RunStatus> => compiled<RunStatus>(statusSchema.$id);
export const validateMeta = (): ValidateFunction<RunMeta> => compiled<RunMeta>(metaSchema.$id);
export const validateSlurm = (): ValidateFunction<SlurmRecord> => compiled<SlurmRecord>(slurmSchema.$id);
/** An analysis run's config.yaml (meta.json kind: analysis); its model, evals and spectra refer into the experiment schema. */
export const validateAnalysis = (): ValidateFunction<AnalysisConfig> => compiled<AnalysisConfig>(analysisSchema.$id);
/** One item of `python -m finetune_lab estimate`'s output. */
export const validateEstimateItem = (): ValidateFunction<EstimateItem> => compiled<EstimateItem>(`${estimateSchema.$id}#/definitions/estimateItem`);
/** One item of `finetune-lab run FILE --dry-run --json`'s output. */
export const validatePlannedRun = (): ValidateFunction<PlannedRunEstimate> => compiled<PlannedRunEstimate>(`${estimateSchema.$id}#/definitions/plannedRun`);

/** A validator for one part of the experiment schema, by JSON pointer (e.g. `/properties/lora/properties/rank`). */
export function validateExperimentAt(pointer: string): ValidateFunction | undefined {
  return ajv().getSchema(`${experimentSchema.$id}#${pointer}`);
}

/** One-line summary of Ajv errors, for files (status.json, meta.json) where positions do not matter. */
export function errorsText(errors: ErrorObject[] | null | undefined): string {
  if (!errors?.length) return '';
  return errors.slice(0, 3).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ');
}
