/** esbuild bundles imported style sheets into the dashboard's app.css. */
declare module '*.css'
