/**
 * The smallest DOM helpers, with no other imports (ui.ts pulls in the message API, which calls
 * acquireVsCodeApi: the form and the playground have their own protocols and call it themselves).
 */

/**
 * Styles go in through a constructable stylesheet: the CSP allows no inline <style> or style
 * attributes, and adoptedStyleSheets are not inline markup (Lit, under @vscode-elements, styles
 * its shadow roots the same way).
 */
export function adoptCss(css: string): void {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

/** An element with an optional class and text (never innerHTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K];
export function el(tag: string, cls?: string, text?: string): HTMLElement;
export function el(tag: string, cls?: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
