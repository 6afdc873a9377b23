package inventory

import (
	"context"
	"errors"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Deregister removes an instance and its tags from the inventory
// (kaginashi:DeregisterInstance): a NotFound error with EC2's code when it
// is not there (gone meanwhile, as from a concurrent call).
func (s *Service) Deregister(ctx context.Context, id string) error {
	err := s.store.DeleteInstance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.WithCode(apierr.NotFound, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	if err != nil {
		return apierr.Wrap(err, "deleting the instance")
	}
	return nil
}
