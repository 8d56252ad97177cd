package httpauth

import (
	"testing"

	"github.com/tokengate/tokengate/internal/testenv"
)

// TestMain gives the tests a temporary HOME and XDG directories.
func TestMain(m *testing.M) { testenv.Main(m) }
