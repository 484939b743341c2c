// slurm.json (schemas/slurm.schema.json): the run's job id(s), written by the submitter; the job's
// last state seen, written by whoever tracks it. Replaced atomically; a broken file is a folder problem.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SlurmRecord } from '../generated/slurm';
import { errorsText, validateSlurm } from '../schemas';
import { writeJsonAtomic } from '../atomic';
import type { JobInfo } from './jobs';

export const SLURM_FILE = 'slurm.json';

/** The run's slurm.json, or undefined when it has none; a problem is pushed onto `problems`. */
export async function readSlurmRecord(runDir: string, problems: string[] = []): Promise<SlurmRecord | undefined> {
  let text: string;
  try { text = await fs.promises.readFile(path.join(runDir, SLURM_FILE), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${SLURM_FILE}: ${(e as Error).message}`);
    return undefined;
  }
  let value: unknown;
  try { value = JSON.parse(text); } catch (e) { problems.push(`${SLURM_FILE}: not JSON (${(e as Error).message})`); return undefined; }
  if (!validateSlurm()(value)) { problems.push(`${SLURM_FILE}: ${errorsText(validateSlurm().errors)}`); return undefined; }
  return value as SlurmRecord;
}

export async function writeSlurmRecord(runDir: string, record: SlurmRecord): Promise<void> {
  await writeJsonAtomic(path.join(runDir, SLURM_FILE), record);
}

/** Records what Slurm said about the job, when it changed (so it is known after Slurm forgets the job). */
export async function recordObservation(runDir: string, record: SlurmRecord, job: JobInfo, now: number): Promise<SlurmRecord> {
  if (job.jobId !== record.job_id) return record;
  const same = record.state === job.state && (record.reason ?? null) === job.reason && (record.nodes ?? null) === job.nodes
    && (record.exit_code ?? null) === job.exitCode;
  if (same) return record;
  const next: SlurmRecord = { ...record, state: job.state, reason: job.reason, nodes: job.nodes, exit_code: job.exitCode, observed: now };
  await writeSlurmRecord(runDir, next);
  return next;
}
