// How a run's state is drawn wherever it is shown (the Runs view, the runs table): a codicon and a
// theme colour per state. Pure, so the webviews share it with the editor shell.
import type { RunStatus } from './generated/status';

type RunState = RunStatus['state'];

/** Codicon id per state (ThemeIcon ids). */
export const STATE_ICON: Record<RunState, string> = {
  queued: 'clock',
  running: 'sync~spin',
  completed: 'pass',
  failed: 'error',
  stopped: 'debug-stop',
};

/** Theme colour per state for the icon, or undefined for the default foreground. */
export const STATE_COLOR: Record<RunState, string | undefined> = {
  queued: undefined,
  running: 'charts.blue',
  completed: 'testing.iconPassed',
  failed: 'testing.iconFailed',
  stopped: undefined,
};
