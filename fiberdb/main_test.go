package fiberdb_test

import (
	"testing"

	"github.com/fiberdb/fiberdb/fiberdbtest"
)

func TestMain(m *testing.M) { fiberdbtest.Main(m) }
