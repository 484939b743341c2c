/**
 * The webview's side of src/core/messages.ts: one acquireVsCodeApi() per page, typed post,
 * validated receive (a message that fails `isHostToWebview` is dropped and reported), and
 * typed getState/setState so a hidden panel comes back as it was.
 */
import { isHostToWebview, type HostToWebview, type WebviewToHost } from '../../src/core/messages';

const api = acquireVsCodeApi<unknown>();

export function post(msg: WebviewToHost): void {
  api.postMessage(msg);
}

export function onHostMessage(handler: (msg: HostToWebview) => void): void {
  window.addEventListener('message', (ev: MessageEvent<unknown>) => {
    if (!isHostToWebview(ev.data)) {
      post({ type: 'log', level: 'error', message: `webview dropped an invalid message: ${String((ev.data as { type?: unknown })?.type)}` });
      return;
    }
    handler(ev.data);
  });
}

/** Merges the saved state over defaults, so a state saved by an older version still loads. */
export function loadState<T extends object>(defaults: T): T {
  const saved = api.getState();
  return typeof saved === 'object' && saved !== null ? { ...defaults, ...(saved as Partial<T>) } : { ...defaults };
}

export function saveState<T extends object>(state: T): void {
  api.setState(state);
}

/** The handshake: the host posts nothing until this arrives (as vscode-pull-request-github's WebviewBase waits for `ready`). */
export function ready(): void {
  post({ type: 'ready' });
}
