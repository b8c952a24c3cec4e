//go:build race

package smtpsender_test

// raceEnabled: the race detector slows byte-wise encoding ~10x, which
// makes multi-megabyte timing tests meaningless.
const raceEnabled = true
