"""The portal's pages, one module per area; each area adds its router here."""

from .home import router as home

ROUTERS = [home]
