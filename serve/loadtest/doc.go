// Command loadtest measures `esvae serve` under load: it starts the server in this process on a
// loopback port, has K clients send drawn-digit reconstruction requests (the page's own request:
// a 280x280 PNG data URL, resized by the server) for a fixed time, and prints requests per second,
// latency percentiles, the 503 answers of a full queue, and the process's resident memory before
// and after (it should stay flat). A measurement, not a test: nothing is asserted.
//
//	go run ./serve/loadtest --checkpoint runs/demo/last.ckpt --clients 4 --duration 20s
//
// It may import every package of the project (it stands beside the commands); nothing imports it.
package main
