// Bundles the UI into dist/: one ES module, one stylesheet, index.html. Run by `make ui`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  outfile: "dist/app.js",
  logLevel: "warning",
});
const css = readFileSync("node_modules/uplot/dist/uPlot.min.css", "utf8") + "\n" +
  readFileSync("src/style.css", "utf8");
writeFileSync("dist/app.css", css);
copyFileSync("src/index.html", "dist/index.html");
copyFileSync("src/favicon.svg", "dist/favicon.svg");
