//go:build !linux

package intercept

// threadCPU is not measured off Linux.
func threadCPU() int64 { return 0 }
