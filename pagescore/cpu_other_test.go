//go:build !linux

package pagescore

import "time"

// threadCPU is not measured off Linux; the CPU metrics then read 0.
func threadCPU() time.Duration { return 0 }
