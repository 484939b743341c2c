/** A run as the shell hands it to a panel or a job: its id and its folder (holding events.jsonl). */
export interface RunRef {
  id: string;
  dir: string;
}
