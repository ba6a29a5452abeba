// Package tbtest reads TensorBoard event files with TensorBoard's own readers (the tensorboard
// package's EventAccumulator and the plugin EventAccumulator of its server) for the tests: it installs the pinned wheels of requirements.txt
// (hash-checked) into a venv under the project's cache once, then runs read_events.py.
//
// Imports: none of the project's packages; only tests import it.
package tbtest
