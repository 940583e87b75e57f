package main

import (
	"io"
	"sync"
)

// streamWriters turn writes into messages on a gRPC server stream. A stream
// must not be sent on concurrently, and a child's stdout and stderr are
// copied by separate goroutines, so sends are serialized.
type streamWriters struct {
	stdout, stderr io.Writer
}

func newStreamWriters(send func(stdout, stderr []byte) error) *streamWriters {
	var mu sync.Mutex
	writer := func(isStderr bool) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			// The stream may keep the slice; the caller reuses it.
			data := append([]byte(nil), p...)
			mu.Lock()
			defer mu.Unlock()
			var err error
			if isStderr {
				err = send(nil, data)
			} else {
				err = send(data, nil)
			}
			if err != nil {
				return 0, err
			}
			return len(p), nil
		})
	}
	return &streamWriters{stdout: writer(false), stderr: writer(true)}
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
