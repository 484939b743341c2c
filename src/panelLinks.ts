// The webview panels the shell opens (owned by the webviews side in src/panels/). One import site,
// so a rename there is one edit here.
export { DashboardPanel } from './panels/dashboardPanel';
export { ParetoPanel } from './panels/paretoPanel';
export { SpectraPanel } from './panels/spectraPanel';
export { registerPanelSerializers } from './panels/serializers';
