/**
 * The codicon font (VS Code's icons, @vscode/codicons, the peer dependency of @vscode-elements) in
 * a webview: esbuild copies the .ttf beside the bundle (its `file` loader) and the stylesheet is
 * adopted with the font's URL resolved against the bundle's own (an asWebviewUri URL, which the
 * CSP's font-src allows). Then `<span class="codicon codicon-pass">` draws as in the editor.
 */
import css from '@vscode/codicons/dist/codicon.css';
import font from '@vscode/codicons/dist/codicon.ttf';
import { adoptCss } from './dom';

const script = document.currentScript as HTMLScriptElement | null;

export function adoptCodicons(): void {
  const url = new URL(font, script?.src ?? document.baseURI).toString();
  adoptCss(css.replace(/url\("?\.\/codicon\.ttf[^")]*"?\)/, `url("${url}")`));
}

/** A codicon element: `name` as in `$(name)`, e.g. 'pass', 'sync~spin'. */
export function codicon(name: string): HTMLSpanElement {
  const s = document.createElement('span');
  setCodicon(s, name);
  s.setAttribute('aria-hidden', 'true');
  return s;
}

export function setCodicon(s: HTMLElement, name: string): void {
  const [id, mod] = name.split('~');
  s.className = `codicon codicon-${id}${mod ? ` codicon-modifier-${mod}` : ''}`;
}
