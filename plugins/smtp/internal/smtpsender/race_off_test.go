//go:build !race

package smtpsender_test

const raceEnabled = false
