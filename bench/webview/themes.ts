/** A subset of VS Code's Dark Modern / Light Modern / Dark High Contrast variables, as the editor sets them on a webview's <html>. */
const common = `--vscode-font-family: "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", sans-serif; --vscode-font-size: 13px; --vscode-font-weight: normal; --vscode-editor-font-family: "Droid Sans Mono", monospace;`;
export type ThemeName = 'dark' | 'light' | 'hc';
export const THEMES: Record<ThemeName, { bodyClass: string; css: string }> = {
  dark: { bodyClass: 'vscode-dark', css: `:root{${common} --vscode-foreground:#cccccc; --vscode-editor-foreground:#cccccc; --vscode-editor-background:#1f1f1f; --vscode-descriptionForeground:#9d9d9d;
    --vscode-panel-border:#2b2b2b; --vscode-editorWidget-background:#202020; --vscode-widget-border:#313131; --vscode-charts-foreground:#cccccc; --vscode-charts-lines:rgba(204,204,204,0.5);
    --vscode-charts-blue:#3794ff; --vscode-charts-red:#f14c4c; --vscode-charts-green:#89d185; --vscode-charts-yellow:#cca700; --vscode-charts-orange:#d18616; --vscode-charts-purple:#b180d7;
    --vscode-button-background:#0078d4; --vscode-button-foreground:#ffffff; --vscode-button-hoverBackground:#026ec1; --vscode-button-border:rgba(255,255,255,0.07);
    --vscode-button-secondaryBackground:#313131; --vscode-button-secondaryForeground:#cccccc; --vscode-button-secondaryHoverBackground:#3c3c3c;
    --vscode-dropdown-background:#313131; --vscode-dropdown-border:#3c3c3c; --vscode-dropdown-foreground:#cccccc; --vscode-dropdown-listBackground:#1f1f1f;
    --vscode-checkbox-background:#313131; --vscode-checkbox-border:#3c3c3c; --vscode-checkbox-foreground:#cccccc; --vscode-settings-checkboxBackground:#313131; --vscode-settings-checkboxBorder:#3c3c3c;
    --vscode-focusBorder:#0078d4; --vscode-textLink-foreground:#4daafc; --vscode-textBlockQuote-background:#2b2b2b; --vscode-inputValidation-errorBackground:#5a1d1d; --vscode-inputValidation-errorBorder:#be1100;
    --vscode-progressBar-background:#0078d4; --vscode-list-activeSelectionBackground:#04395e; --vscode-list-hoverBackground:#2a2d2e; --vscode-input-background:#313131; }` },
  light: { bodyClass: 'vscode-light', css: `:root{${common} --vscode-foreground:#3b3b3b; --vscode-editor-foreground:#3b3b3b; --vscode-editor-background:#ffffff; --vscode-descriptionForeground:#6f6f6f;
    --vscode-panel-border:#e5e5e5; --vscode-editorWidget-background:#f8f8f8; --vscode-widget-border:#e5e5e5; --vscode-charts-foreground:#3b3b3b; --vscode-charts-lines:rgba(59,59,59,0.5);
    --vscode-charts-blue:#1a85ff; --vscode-charts-red:#e51400; --vscode-charts-green:#388a34; --vscode-charts-yellow:#bf8803; --vscode-charts-orange:#d18616; --vscode-charts-purple:#652d90;
    --vscode-button-background:#005fb8; --vscode-button-foreground:#ffffff; --vscode-button-hoverBackground:#0258a8; --vscode-button-border:rgba(0,0,0,0.1);
    --vscode-button-secondaryBackground:#e5e5e5; --vscode-button-secondaryForeground:#3b3b3b; --vscode-button-secondaryHoverBackground:#cccccc;
    --vscode-dropdown-background:#ffffff; --vscode-dropdown-border:#cecece; --vscode-dropdown-foreground:#3b3b3b; --vscode-dropdown-listBackground:#ffffff;
    --vscode-checkbox-background:#f8f8f8; --vscode-checkbox-border:#cecece; --vscode-checkbox-foreground:#3b3b3b; --vscode-settings-checkboxBackground:#f8f8f8; --vscode-settings-checkboxBorder:#cecece;
    --vscode-focusBorder:#005fb8; --vscode-textLink-foreground:#005fb8; --vscode-textBlockQuote-background:#f8f8f8; --vscode-inputValidation-errorBackground:#f2dede; --vscode-inputValidation-errorBorder:#be1100;
    --vscode-progressBar-background:#005fb8; --vscode-list-activeSelectionBackground:#e8e8e8; --vscode-list-hoverBackground:#f2f2f2; --vscode-input-background:#ffffff; }` },
  // VS Code's "Dark High Contrast" (hc_black): black background, white text, every border in
  // contrastBorder (#6fc3df), focus/active borders in contrastActiveBorder (#f38518).
  hc: { bodyClass: 'vscode-high-contrast', css: `:root{${common} --vscode-foreground:#ffffff; --vscode-editor-foreground:#ffffff; --vscode-editor-background:#000000; --vscode-descriptionForeground:rgba(255,255,255,0.7);
    --vscode-contrastBorder:#6fc3df; --vscode-contrastActiveBorder:#f38518; --vscode-panel-border:#6fc3df; --vscode-editorWidget-background:#0c141f; --vscode-widget-border:#6fc3df;
    --vscode-charts-foreground:#ffffff; --vscode-charts-lines:rgba(255,255,255,0.5);
    --vscode-charts-blue:#3794ff; --vscode-charts-red:#f14c4c; --vscode-charts-green:#89d185; --vscode-charts-yellow:#cca700; --vscode-charts-orange:#d18616; --vscode-charts-purple:#b180d7;
    --vscode-button-background:#000000; --vscode-button-foreground:#ffffff; --vscode-button-border:#6fc3df; --vscode-button-secondaryBackground:#000000; --vscode-button-secondaryForeground:#ffffff;
    --vscode-dropdown-background:#000000; --vscode-dropdown-border:#6fc3df; --vscode-dropdown-foreground:#ffffff; --vscode-dropdown-listBackground:#000000;
    --vscode-checkbox-background:#000000; --vscode-checkbox-border:#6fc3df; --vscode-checkbox-foreground:#ffffff; --vscode-settings-checkboxBackground:#000000; --vscode-settings-checkboxBorder:#6fc3df;
    --vscode-focusBorder:#f38518; --vscode-textLink-foreground:#21a6ff; --vscode-textBlockQuote-background:#000000; --vscode-inputValidation-errorBackground:#000000; --vscode-inputValidation-errorBorder:#6fc3df;
    --vscode-progressBar-background:#6fc3df; --vscode-list-activeSelectionBackground:#000000; --vscode-list-hoverBackground:#000000; --vscode-input-background:#000000; }` },
};

/** The theme's variables as name → value, to set on <html> the way VS Code does on a theme switch. */
export function themeVars(name: ThemeName): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of THEMES[name].css.matchAll(/(--[\w-]+)\s*:\s*([^;]+);/g)) out[m[1]] = m[2].trim();
  return out;
}
