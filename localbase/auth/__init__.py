"""/auth/v1: the GoTrue subset (sign-up, token grants, user, logout, admin users)."""
