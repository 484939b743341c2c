/** esbuild loads .css as text (esbuild.mjs: loader '.css': 'text'); ui.ts adopts it as a constructable stylesheet. */
declare module '*.css' {
  const text: string;
  export default text;
}

/** esbuild's `file` loader (esbuild.mjs: '.ttf': 'file') copies the font beside the bundle; the import is its path. */
declare module '*.ttf' {
  const path: string;
  export default path;
}
