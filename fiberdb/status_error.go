package fiberdb

import "github.com/gofiber/fiber/v2"

// StatusError is an HTTP status for Fiber's error handler that keeps its
// cause: errors.As finds the *fiber.Error, errors.Is the cause.
type StatusError struct {
	Status *fiber.Error
	Err    error
}

func (e *StatusError) Error() string { return e.Status.Message }

// Unwrap returns the status and the cause.
func (e *StatusError) Unwrap() []error { return []error{e.Status, e.Err} }
