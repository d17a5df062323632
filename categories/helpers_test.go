package categories

import "sync"

var (
	bundleOnce sync.Once
	bundleIx   *Index
	bundleErrs []error
)
