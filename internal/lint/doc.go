// Package lint holds the project's lint rules, written as tests: run
// "go test ./internal/lint/". It has no code of its own; this file only
// gives the package a non-test file so that every go command accepts it.
//
// imports_test.go enforces the direction of imports that ARCHITECTURE.md
// draws: each package imports only packages below it in the layer list.
package lint
