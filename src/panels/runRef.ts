/** A run as the shell hands it to a panel: its id and its folder (holding events.jsonl). */
export interface RunRef {
  id: string;
  dir: string;
}
