// Package scripts holds the shell scripts of the project (set-up, the GPU check and bundle, Docker
// and documentation helpers) and, in its tests, the checks of those scripts; it has no code of its
// own. Its tests may run the commands' binary; no package imports it.
package scripts
