#!/usr/bin/env node
// tap's `before` script (.taprc): builds dist/ only when a source is newer than the last build.
// The build runs under a shell in a plain environment, out of reach of the test runner's hooks
// on the node processes it spawns (its coverage would count the build as code under test).
// A failed build throws here, which fails the run.
import { execFileSync } from 'node:child_process'

const build = new URL('./build.mjs', import.meta.url).pathname
// `env -i`: tap adds its own variables to every child it sees spawned, whatever env is given.
execFileSync('/bin/sh', ['-c', 'exec env -i PATH="$PATH" HOME="$HOME" "$0" "$1" --if-stale', process.execPath, build], { stdio: 'inherit' })
