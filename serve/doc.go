// Package serve is `esvae serve`: a local web page to explore one trained model. It owns the HTTP
// server (Go's net/http, pattern routing), the JSON API under /api/, the page itself (plain HTML,
// CSS and JavaScript in static/, embedded; nothing is fetched from the internet), the decoding and
// validation of the images users send, and the one worker goroutine that holds the model.
//
// Threads and tensors: libtorch's grad mode is per OS thread, so every tensor operation runs on one
// goroutine locked to its thread (nn.LockThread) that loads the model and then takes jobs from a
// bounded channel; a handler whose job does not fit in the queue answers 503. The worker creates,
// uses and frees every tensor of a job before it answers; handlers only see Go slices and PNGs.
//
// Errors: a request a user can get wrong (size, JSON, image shape, counts, probabilities, indices)
// gets a 4xx with {"error": "..."}; a failure of the model is a 500 with the same shape; a panic in a
// handler or a job is recovered, logged and answered with a 500, and the server goes on.
//
// Imports: serve sits beside compare and bench, above train (checkpoints, devices, data sets) and
// eval (FlipSpikes). It must not import cmd/esvae, cobra or viper (the command binds its flags to
// Options), nor compare, bench or selfcheck; only cmd/esvae and the measurement program
// serve/loadtest import serve.
package serve
