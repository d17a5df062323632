package namemodel

import (
	"math"
	"slices"
)

// minCalibration is the fewest benign names worth calibrating on: with
// fewer, the BlockFPR quantile is a handful of names, and the model is
// left uncalibrated (trained on every name).
const minCalibration = 2000

// splitCalibration takes the calibration names out of ex: a fraction f of
// the benign names, chosen by a stable hash of their registrable domain
// so that a site's other names do not train the model it calibrates. It
// returns ex unchanged and no calibration names when f <= 0 or too few
// benign names would be drawn.
func splitCalibration(ex []example, f float64) (train, calib []example) {
	if f <= 0 {
		return ex, nil
	}
	cut := stableCut(f)
	n := 0
	for i := range ex {
		if ex[i].benign && calibHash(ex[i].host) < cut {
			n++
		}
	}
	if n < minCalibration {
		return ex, nil
	}
	train = make([]example, 0, len(ex)-n)
	calib = make([]example, 0, n)
	for _, e := range ex {
		if e.benign && calibHash(e.host) < cut {
			calib = append(calib, e)
		} else {
			train = append(train, e)
		}
	}
	return train, calib
}

// calibHash is a stable hash of a name's registrable domain, independent
// of stableHash (which Evaluate's benign split uses: the same hash would
// draw the calibration names from the names it already held out).
func calibHash(host string) uint64 { return mix(hashBytes(hashNS('c'), registrable(host))) }

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

// calibrate sets calA and calB so that, per category, the raw log-odds
// at which opt.BlockFPR of the calibration names score at or above it
// maps to the default block threshold, and the one at opt.AlertFPR to the
// alert threshold: a straight line in log-odds through both anchors,
// which keeps the order of the scores. Without calibration names the map
// is the identity.
func (m *Model) calibrate(calib []example, opt Options) {
	for c := range NumCategories {
		m.calA[c], m.calB[c] = 1, 0
	}
	if len(calib) == 0 {
		return
	}
	z := make([][]float32, NumCategories)
	var fs featureSet
	for _, e := range calib {
		fs.n = 0
		if !m.extract(e.host, &fs) {
			continue
		}
		l := m.logits(&fs)
		for c := range z {
			z[c] = append(z[c], l[c])
		}
	}
	block, alert := DefaultThresholds()
	for c := range z {
		if len(z[c]) == 0 {
			continue
		}
		logitBlock, logitAlert := logit(float64(block[c])), logit(float64(alert[c]))
		zs := z[c]
		slices.Sort(zs)
		slices.Reverse(zs)
		q := func(f float64) float64 {
			return float64(zs[min(len(zs)-1, int(f*float64(len(zs))))])
		}
		zb, za := q(opt.BlockFPR), q(opt.AlertFPR)
		// Names are ranked as before; the line needs two distinct anchors
		// and must not flatten the scale (a slope under a quarter of the
		// raw one would push unseen names' scores together).
		if zb-za < 0.5 {
			za = zb - 0.5
		}
		a := (logitBlock - logitAlert) / (zb - za)
		a = min(max(a, 0.25), 4)
		m.calA[c] = float32(a)
		m.calB[c] = float32(logitBlock - a*zb)
	}
}
