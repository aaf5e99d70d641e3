#!/usr/bin/env node
// tap's `before` script (.taprc): builds dist/ only when a source is newer than the last build.
process.argv.push('--if-stale')
await import('./build.mjs')
