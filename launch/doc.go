// Package launch starts the ranks of a data-parallel job on one machine, as torchrun --standalone
// does: N processes of esvae with torchrun's environment, their output prefixed by rank, signals
// forwarded once, and the ranks tied to the launcher's life (esvae launch).
//
// Imports: none of the project's packages (the ranks are processes; they join the job through
// package train's data-parallel set-up); only the commands import it.
package launch
