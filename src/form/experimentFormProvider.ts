// "Experiment Form": a custom text editor over *.finetune.yaml. The TextDocument stays the truth: the
// form shows what the YAML holds, and each control's change becomes one small WorkspaceEdit (through
// the yaml Document API's node ranges), so comments and key order survive and undo works.
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import { applyDefaults } from '../core/defaults';
import { assertNever, isFormToHost, type FormToHost, type HostToForm, type PathSeg } from '../core/formProtocol';
import { expandSweep } from '../core/sweep';
import { isExperimentFile, parsedExperiment } from '../editor/parsedCache';
import { setValueEdit } from '../editor/yamlEdit';

export class ExperimentFormProvider implements vscode.CustomTextEditorProvider {
  static readonly viewType = 'finetuneLab.experimentForm';

  static register(context: vscode.ExtensionContext): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(ExperimentFormProvider.viewType, new ExperimentFormProvider(context.extensionUri), {
      supportsMultipleEditorsPerDocument: true,
    });
  }

  /** Opens the form for a file (the argument, the active editor's, or one picked). */
  static async open(arg?: vscode.Uri): Promise<void> {
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (!uri || !isExperimentFile({ uri, fileName: uri.fsPath })) {
      const files = await vscode.workspace.findFiles('**/*.finetune.yaml', '**/node_modules/**', 50);
      const pick = await vscode.window.showQuickPick(files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })), { title: 'Open which experiment in the form?' });
      if (pick) await vscode.commands.executeCommand('vscode.openWith', pick.uri, ExperimentFormProvider.viewType);
      return;
    }
    await vscode.commands.executeCommand('vscode.openWith', uri, ExperimentFormProvider.viewType);
  }

  static async openAsText(arg?: vscode.Uri): Promise<void> {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    const uri = arg instanceof vscode.Uri ? arg : input instanceof vscode.TabInputCustom ? input.uri : undefined;
    if (uri) await vscode.commands.executeCommand('vscode.openWith', uri, 'default');
  }

  private constructor(private readonly extensionUri: vscode.Uri) {}

  resolveCustomTextEditor(document: vscode.TextDocument, panel: vscode.WebviewPanel): void {
    new FormSession(document, panel, this.extensionUri);
  }
}

/** One open form: the handshake, document → form updates, and form → document edits (in order). */
class FormSession {
  private ready = false;
  private readonly disposables: vscode.Disposable[] = [];
  private timer?: NodeJS.Timeout;
  private edits: Promise<unknown> = Promise.resolve();

  constructor(private readonly document: vscode.TextDocument, private readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri) {
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = html(panel.webview, extensionUri);
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => { if (isFormToHost(m)) void this.onMessage(m); }),
      vscode.workspace.onDidChangeTextDocument((e) => { if (e.document === document) this.scheduleSend(); }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.scheduleSend()),
      panel.onDidChangeViewState(() => { if (panel.visible) this.scheduleSend(); }),
    );
    panel.onDidDispose(() => { clearTimeout(this.timer); for (const d of this.disposables) d.dispose(); });
  }

  private async onMessage(m: FormToHost): Promise<void> {
    switch (m.type) {
      case 'ready': this.ready = true; return this.send();
      case 'set': return this.set(m.path, m.remove ? undefined : m.value);
      case 'openText': return void vscode.commands.executeCommand('vscode.openWith', this.document.uri, 'default');
      case 'start': return void vscode.commands.executeCommand('finetuneLab.startRun', this.document.uri);
      default: return assertNever(m);
    }
  }

  /** Edits are chained: each is computed against the text the previous one left. */
  private set(path: PathSeg[], value: unknown): Promise<void> {
    const next = this.edits.then(async () => {
      const edit = setValueEdit(this.document.getText(), path, value);
      if (!edit) {
        if (value !== undefined) void vscode.window.showWarningMessage(`Could not set ${path.join('.')}: fix the YAML syntax first (Open as Text).`);
        return;
      }
      const we = new vscode.WorkspaceEdit();
      we.replace(this.document.uri, new vscode.Range(this.document.positionAt(edit.start), this.document.positionAt(edit.end)), edit.text);
      await vscode.workspace.applyEdit(we);
    });
    this.edits = next.catch(() => undefined);
    return next;
  }

  private scheduleSend(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.send(), 60);
  }

  private async send(): Promise<void> {
    if (!this.ready) return;
    const parsed = parsedExperiment(this.document);
    let runCount: number | undefined;
    if (parsed.ok && parsed.value) { try { runCount = expandSweep(parsed.value).length; } catch { /* shown as errors */ } }
    let defaults: unknown;
    try { defaults = applyDefaults({ ...(typeof parsed.raw === 'object' && parsed.raw ? parsed.raw : {}) }); } catch { defaults = undefined; }
    const msg: HostToForm = {
      type: 'document',
      config: parsed.doc.errors.length ? undefined : parsed.raw,
      defaults,
      diagnostics: parsed.diagnostics.map((d) => ({ severity: d.severity, message: d.message, path: d.path, line: d.line })),
      runCount,
      trusted: vscode.workspace.isTrusted,
    };
    await this.panel.webview.postMessage(msg);
  }
}

function html(webview: vscode.Webview, extensionUri: vscode.Uri): string {
  return webviewHtml(webview, extensionUri, 'form', 'Experiment Form', '<main id="form" aria-label="Experiment Form"></main>\n');
}
