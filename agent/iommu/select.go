package iommu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Candidate is one backend Select may open.
type Candidate struct {
	Name string
	Open func(ctx context.Context) (Backend, error)
}

// Select opens the first candidate that works, in order (the agent passes
// iommufd, then type1, then emulated). A candidate that reports
// ErrNotSupported is passed over and the reason logged; any other error
// stops the selection, because it means a present IOMMU is misbehaving and
// silently falling back to emulation would hide it.
func Select(ctx context.Context, log *slog.Logger, candidates ...Candidate) (Backend, error) {
	var passed []error
	for _, c := range candidates {
		b, err := c.Open(ctx)
		if err == nil {
			log.Info("IOMMU backend selected", "backend", c.Name, "flavour", b.Flavour())
			return b, nil
		}
		if !errors.Is(err, ErrNotSupported) {
			return nil, fmt.Errorf("open %s backend: %w", c.Name, err)
		}
		log.Info("IOMMU backend passed over", "backend", c.Name, "reason", err)
		passed = append(passed, fmt.Errorf("%s: %w", c.Name, err))
	}
	return nil, fmt.Errorf("no IOMMU backend usable: %w", errors.Join(passed...))
}
