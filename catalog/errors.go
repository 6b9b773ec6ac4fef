package catalog

import "errors"

// Sentinel errors.
var (
	// ErrReadBytes is returned by [Source.ReadBytes]: the catalog is a map
	// provider, loaded with a nil parser.
	ErrReadBytes = errors.New("catalog: ReadBytes is not supported; load the provider with a nil parser")
	// ErrListenerConfig is returned by [Listener.Listen] when Connect or
	// the callback is nil.
	ErrListenerConfig = errors.New("catalog: Listen requires Listener.Connect and a callback")
)
