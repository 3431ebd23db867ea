package clientjs

import "embed"

// Dist holds dist/: waterspout.js (script tag, global WaterSpout),
// waterspout.mjs (ES module), waterspout.legacy.js (ES5, long-poll and JSONP)
// and the TypeScript declarations. Serve it under /client/, for example with
// http.FileServerFS(fs.Sub(Dist, "dist")).
//
//go:embed dist
var Dist embed.FS
