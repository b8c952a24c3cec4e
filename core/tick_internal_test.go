package core

import "testing"

func TestShareBudget(t *testing.T) {
	cases := []struct {
		budget int
		caps   []int
		rot    int
		want   []int
	}{
		{50, []int{50}, 0, []int{50}},
		{50, []int{50, 50}, 0, []int{25, 25}},
		{50, []int{50, 50, 50}, 0, []int{17, 17, 16}},
		{50, []int{50, 50, 50}, 1, []int{16, 17, 17}},
		{50, []int{10, 50}, 0, []int{10, 40}},
		{50, []int{5, 5}, 0, []int{5, 5}},
		{3, []int{50, 50, 50, 50}, 2, []int{1, 0, 1, 1}},
	}
	for _, c := range cases {
		got := shareBudget(c.budget, c.caps, c.rot)
		sum := 0
		for i := range got {
			sum += got[i]
			if got[i] > c.caps[i] {
				t.Errorf("%v: share %d above cap %d", c, got[i], c.caps[i])
			}
		}
		if sum > c.budget {
			t.Errorf("%v: shares %v exceed budget", c, got)
		}
		if sum != min(c.budget, sumInts(c.caps)) {
			t.Errorf("%v: shares %v leave budget unused", c, got)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("budget %d caps %v rot %d: got %v want %v", c.budget, c.caps, c.rot, got, c.want)
				break
			}
		}
	}
}

func sumInts(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
