package native

/*
#include <stdlib.h>
#include "profile.h"
*/
import "C"

import "unsafe"

// ProfileBegin starts recording the libtorch operators this thread runs (with their time), to be
// written as a Chrome trace to path by ProfileEnd. Only one recording runs at a time. The caller
// keeps the goroutine on its OS thread (runtime.LockOSThread) in between: the recording is per
// thread.
func ProfileBegin(path string) error {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	return cerr(C.esv_profile_begin(cs))
}

// ProfileEnd stops the recording ProfileBegin started and writes its trace.
func ProfileEnd() error { return cerr(C.esv_profile_end()) }
