/** The panel API the shell uses (src/extension.ts). */
export type { RunRef } from './runRef';
export { DashboardPanel } from './dashboardPanel';
export { ParetoPanel, type ParetoFilter } from './paretoPanel';
export { SpectraPanel } from './spectraPanel';
export { registerPanelSerializers } from './serializers';
