package namemodel

import (
	"context"
	"math"
	"math/rand/v2"
)

// classWeights returns, per category, the weight of a positive and of a
// negative example so that both sides weigh the same in total (adult
// names outnumber piracy names thirty to one), benign names counting
// BenignWeight times another negative.
func classWeights(ex []example, info Info, opt Options) (pos, neg [NumCategories]float64) {
	var negMass [NumCategories]float64
	for _, e := range ex {
		w := 1.0
		if e.benign {
			w = opt.BenignWeight
		}
		for c := range NumCategories {
			if e.pos&(1<<c) == 0 {
				negMass[c] += w
			}
		}
	}
	n := float64(len(ex))
	for c := range NumCategories {
		pos[c] = n / (2 * float64(max(1, info.Positives[c])))
		neg[c] = n / (2 * max(1, negMass[c]))
	}
	return pos, neg
}

// trainLogReg fits one logistic regression per category (one vs the rest)
// by SGD over shuffled names, with a decaying step and L2 decay applied to
// the weights a name touches.
func (m *Model) trainLogReg(ctx context.Context, ex []example, info Info, opt Options) error {
	m.scaled = true
	posW, negW := classWeights(ex, info, opt)
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6e616d65))
	order := make([]int32, len(ex))
	for i := range order {
		order[i] = int32(i)
	}
	// Features are extracted once (segmenting is most of the cost) into
	// one flat array: 37 uint32 per name on average on the default lists.
	feats := make([]uint32, 0, len(ex)*40)
	offs := make([]uint32, len(ex)+1)
	var fs featureSet
	for i := range ex {
		if i&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		fs.n = 0
		if m.extract(ex[i].host, &fs) {
			feats = append(feats, fs.idx[:fs.n]...)
		}
		offs[i+1] = uint32(len(feats))
	}
	var bias [NumCategories]float64
	total := float64(opt.Epochs * len(ex))
	step := 0
	const K = int(NumCategories)
	for epoch := 0; epoch < opt.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for k, i := range order {
			if k&4095 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			e := &ex[i]
			idx := feats[offs[i]:offs[i+1]]
			if len(idx) == 0 {
				continue
			}
			lr := opt.LearningRate / (1 + 4*float64(step)/total)
			step++
			v := float32(1 / math.Sqrt(float64(len(idx))))
			var z [NumCategories]float32
			for _, f := range idx {
				w := m.w[int(f)*K:][:K]
				for c := range z {
					z[c] += w[c]
				}
			}
			var g [NumCategories]float32
			for c := range NumCategories {
				p := sigmoid(float32(bias[c]) + v*z[c])
				y, wt := float32(0), negW[c]
				if e.pos&(1<<c) != 0 {
					y, wt = 1, posW[c]
				} else if e.benign {
					wt *= opt.BenignWeight
				}
				gc := (p - y) * float32(wt)
				bias[c] -= lr * 0.1 * float64(gc)
				g[c] = float32(lr) * gc * v
			}
			decay := float32(1 - lr*opt.L2)
			for _, f := range idx {
				w := m.w[int(f)*K:][:K]
				for c := range w {
					w[c] = w[c]*decay - g[c]
				}
			}
		}
	}
	for c := range bias {
		m.bias[c] = float32(bias[c])
	}
	return nil
}

// trainNB fits one multinomial naive Bayes per category (the category vs
// the rest), with add-alpha smoothing; a name's score is the sigmoid of
// the class prior's log-odds plus its features' log-likelihood ratios.
func (m *Model) trainNB(ctx context.Context, ex []example, info Info, opt Options) error {
	const K = int(NumCategories)
	d := int(m.mask) + 1
	pos := make([]float32, d*K)
	neg := make([]float32, d*K)
	var posTot, negTot [NumCategories]float64
	var fs featureSet
	posW, negW := classWeights(ex, info, opt)
	for k := range ex {
		if k&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := &ex[k]
		fs.n = 0
		if !m.extract(e.host, &fs) {
			continue
		}
		for c := range NumCategories {
			isPos := e.pos&(1<<c) != 0
			wt := negW[c]
			if isPos {
				wt = posW[c]
			} else if e.benign {
				wt *= opt.BenignWeight
			}
			cnt := neg
			if isPos {
				cnt = pos
				posTot[c] += wt * float64(fs.n)
			} else {
				negTot[c] += wt * float64(fs.n)
			}
			for _, f := range fs.idx[:fs.n] {
				cnt[int(f)*K+int(c)] += float32(wt)
			}
		}
	}
	const alpha = 0.5
	for c := range K {
		lp := math.Log(posTot[c] + alpha*float64(d))
		ln := math.Log(negTot[c] + alpha*float64(d))
		for f := range d {
			i := f*K + c
			m.w[i] = float32(math.Log(float64(pos[i])+alpha) - lp - math.Log(float64(neg[i])+alpha) + ln)
		}
		// Classes were weighted to equal mass: a prior of even odds.
		m.bias[c] = 0
	}
	return nil
}
