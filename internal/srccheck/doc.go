// Package srccheck holds tests that check the project's source code itself (no code of its own).
package srccheck
