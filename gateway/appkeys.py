"""Every typed application key, defined once."""

from __future__ import annotations

from aiohttp import web

from channels.base import ChannelRegistry
from dialog.conversations import DialogSettingsHolder
from dialog.engine import DialogEngine
from dialog.knowledge import KnowledgeBase
from gateway.attachments import GridFSAttachmentStore
from gateway.bus import MessageBus
from gateway.config import Settings
from gateway.database import Database
from gateway.operations import Operations
from gateway.outbox import Outbox
from gateway.templating import TemplateRenderer
from gateway.tokens import Principal, TokenService
from ticket_core.repository import MongoCustomerRepository, MongoTicketRepository
from ticket_core.service import TicketService

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
BUS = web.AppKey("bus", MessageBus)
OUTBOX = web.AppKey("outbox", Outbox)
CHANNELS = web.AppKey("channels", ChannelRegistry)
TICKETS = web.AppKey("tickets", MongoTicketRepository)
CUSTOMERS = web.AppKey("customers", MongoCustomerRepository)
TICKET_SERVICE = web.AppKey("ticket_service", TicketService)
TOKENS = web.AppKey("tokens", TokenService)
ATTACHMENTS = web.AppKey("attachments", GridFSAttachmentStore)
RENDERER = web.AppKey("renderer", TemplateRenderer)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
OPERATIONS = web.AppKey("operations", Operations)
DIALOG = web.AppKey("dialog", DialogEngine)
DIALOG_SETTINGS = web.AppKey("dialog_settings", DialogSettingsHolder)

PRINCIPAL = web.RequestKey("principal", Principal)
