package config

import "errors"

// Sentinel errors. Every error [Load] returns wraps one of them, so callers
// can branch with [errors.Is]; the message itself names the exact key.
var (
	// ErrNoEngines: the engines map is missing, empty, or has no "default"
	// engine, and [Options.AllowEmpty] is not set.
	ErrNoEngines = errors.New("no default engine")
	// ErrNoURL: an engine given as a map has no "url" key.
	ErrNoURL = errors.New("engine has no url")
	// ErrInvalidURL: an engine's url cannot be parsed as a PostgreSQL
	// connection string, or its map form has an unknown or ill-typed key.
	ErrInvalidURL = errors.New("invalid engine url")
	// ErrInvalidOption: an unknown option, or a value of the wrong type or
	// out of range (an int, a duration, a header name, a host).
	ErrInvalidOption = errors.New("invalid option")
	// ErrInvalidEngineName: an engine name outside [A-Za-z0-9_-].
	ErrInvalidEngineName = errors.New("invalid engine name")
	// ErrUndefinedEngine: routing names an engine that is not defined.
	ErrUndefinedEngine = errors.New("undefined engine")
	// ErrDuplicateHost: two engines claim the same host.
	ErrDuplicateHost = errors.New("duplicate host")
	// ErrNotLoaded: a [Config] or [Engine] that [Load] did not create, found
	// by [Config.Validate].
	ErrNotLoaded = errors.New("config not created by config.Load")
)

// KeyError reports a problem with one configuration key. Its message reads
// like Flask-SQLAlchemy-Lite's: 'SQLALCHEMY_ENGINES["acme"]["url"]' must be defined.
type KeyError struct {
	Key    string // SQLALCHEMY_ENGINES["acme"]["url"]
	Reason string // "must be defined"
	Err    error  // the sentinel or cause it wraps
}

func (e *KeyError) Error() string { return "'" + e.Key + "' " + e.Reason + "." }

// Unwrap returns the sentinel (or cause) the error wraps.
func (e *KeyError) Unwrap() error { return e.Err }

func keyErr(key, reason string, err error) *KeyError {
	return &KeyError{Key: key, Reason: reason, Err: err}
}
