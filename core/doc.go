// Package core holds campaignd's domain: campaigns and recipients with their
// state machines, the coded Error every layer speaks, the Store and Service
// contracts, and the engine that imports, executes and ticks.
//
// core imports only the sdk (for the Message and error classes a sender
// returns); storage (core/sqlite) and transport (core/control) are
// subpackages that import core and never each other.
package core
