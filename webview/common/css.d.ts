/** esbuild loads .css as text (esbuild.mjs: loader '.css': 'text'); ui.ts adopts it as a constructable stylesheet. */
declare module '*.css' {
  const text: string;
  export default text;
}
