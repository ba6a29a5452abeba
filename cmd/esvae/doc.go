// Command esvae is the command line of the project: train, sample, reconstruct, eval, compare,
// bench, check, serve, launch, import, fad, data and info (cobra; configuration through viper from
// configs/*.yaml, ESVAE_* variables and flags; logs through zerolog).
//
// Each command is thin: it binds its flags to the options of the package that does the work and
// calls it; it holds no loops over data and no model code. It may import every package of the
// project; no package imports it.
package main
