/**
 * Chart colours from the editor's theme: VS Code sets --vscode-* variables on the webview's
 * <html> and a `vscode-light` / `vscode-dark` / `vscode-high-contrast` class on <body>; we
 * read them at draw time and redraw when the class changes (a theme switch).
 */
export interface Palette {
  fg: string;
  muted: string;
  grid: string;
  /** Axis lines: the grid colour, or in high contrast the theme's contrastBorder at full strength. */
  axis: string;
  bg: string;
  font: string;
  fontSize: number;
  /** --vscode-charts-{blue,red,green,yellow,orange,purple}, in that order. */
  series: string[];
  blue: string; red: string; green: string; yellow: string; orange: string; purple: string;
  highContrast: boolean;
  dark: boolean;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function readPalette(): Palette {
  const dark = !document.body.classList.contains('vscode-light') && !document.body.classList.contains('vscode-high-contrast-light');
  const highContrast = document.body.classList.contains('vscode-high-contrast') || document.body.classList.contains('vscode-high-contrast-light');
  const fg = cssVar('--vscode-editor-foreground', cssVar('--vscode-foreground', dark ? '#cccccc' : '#333333'));
  const c = {
    blue: cssVar('--vscode-charts-blue', '#3794ff'),
    red: cssVar('--vscode-charts-red', '#f14c4c'),
    green: cssVar('--vscode-charts-green', '#89d185'),
    yellow: cssVar('--vscode-charts-yellow', '#cca700'),
    orange: cssVar('--vscode-charts-orange', '#d18616'),
    purple: cssVar('--vscode-charts-purple', '#b180d7'),
  };
  return {
    fg,
    // High contrast: no greyed text, and grid/axes strong enough to see (VS Code's HC themes
    // draw every border in contrastBorder).
    muted: highContrast ? fg : cssVar('--vscode-descriptionForeground', fg),
    // charts.lines is foreground at 50%: too loud for a grid, so it is thinned further.
    grid: withAlpha(cssVar('--vscode-charts-lines', fg), highContrast ? 0.4 : 0.16),
    axis: highContrast ? cssVar('--vscode-contrastBorder', fg) : withAlpha(cssVar('--vscode-charts-lines', fg), 0.16),
    bg: cssVar('--vscode-editor-background', dark ? '#1e1e1e' : '#ffffff'),
    font: cssVar('--vscode-font-family', 'system-ui, sans-serif'),
    fontSize: parseFloat(cssVar('--vscode-font-size', '13')) || 13,
    series: [c.blue, c.red, c.green, c.yellow, c.orange, c.purple],
    ...c,
    highContrast,
    dark,
  };
}

/** `color` with alpha a; understands #rgb, #rrggbb, #rrggbbaa, rgb()/rgba() and hsl()/hsla(). */
export function withAlpha(color: string, a: number): string {
  const c = color.trim();
  const hex = /^#([0-9a-f]{3,8})$/i.exec(c);
  if (hex) {
    let h = hex[1];
    if (h.length === 3 || h.length === 4) h = [...h].map((ch) => ch + ch).join('');
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${a})`;
  }
  const hsl = /^hsla?\(([^)]+)\)$/i.exec(c);
  if (hsl) {
    const [h, sat, l] = hsl[1].split(/[ ,/]+/).map((p) => p.trim());
    return `hsla(${h}, ${sat}, ${l}, ${a})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(c);
  if (rgb) {
    const [r, g, b] = rgb[1].split(/[ ,/]+/).map((p) => p.trim());
    return `rgba(${r}, ${g}, ${b}, ${a})`;
  }
  return c;
}

/** Calls cb when the body's theme class changes. */
export function onThemeChange(cb: () => void): void {
  let last = document.body.className;
  new MutationObserver(() => {
    if (document.body.className !== last) { last = document.body.className; cb(); }
  }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
}

/**
 * A sequential scale for LoRA ranks (log2 rank → lightness) around one hue, so rank order
 * reads as light → dark (dark themes: dark → light); full finetuning gets its own hue.
 */
export function rankColor(p: Palette, rank: number, minRank = 4, maxRank = 256): string {
  const t = Math.max(0, Math.min(1, (Math.log2(rank) - Math.log2(minRank)) / Math.max(1, Math.log2(maxRank) - Math.log2(minRank))));
  const light = p.dark ? 78 - t * 40 : 70 - t * 42;
  return `hsl(${200 + t * 40}, ${p.highContrast ? 100 : 75}%, ${light}%)`;
}

export function methodColor(p: Palette, method: string, rank: number | null): string {
  if (method === 'full') return p.orange;
  if (method === 'lora' && rank) return rankColor(p, rank);
  return p.muted;
}

/**
 * A run's colour in every view (Pareto, dashboard, runs table), from what the run is, never from
 * its position in a list: full finetuning in the theme's orange, fainter at a lower learning rate
 * (log scale, 1e-5 → 1e-2); LoRA by rank (rankColor). A run shown in two views is the same colour.
 */
export function runColor(p: Palette, run: { method: string; rank: number | null; lr: number | null }): string {
  if (run.method === 'full') {
    const t = run.lr && run.lr > 0 ? Math.max(0, Math.min(1, (Math.log10(run.lr) + 5) / 3)) : 1;
    return t >= 1 ? p.orange : withAlpha(p.orange, 0.35 + 0.65 * t);
  }
  return methodColor(p, run.method, run.rank);
}
