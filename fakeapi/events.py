"""Simulated user actions other than messages: buttons, reactions, votes, membership."""

from __future__ import annotations

from typing import Any

from fakeapi import updates as build
from fakeapi.errors import SimulationError
from fakeapi.simulate import MessageRef, Simulator
from fakeapi.state import Member, SimChat, SimUser

__all__ = ["EventSimulator"]


def _callback_data(markup: dict[str, Any] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


class EventSimulator(Simulator):
    """Adds callback queries, reactions, poll votes and chat membership changes."""

    def press_button(
        self, user: SimUser | int, message: MessageRef, data: str, *, forged: bool = False
    ) -> dict[str, Any]:
        """Queue a callback_query for an inline button under a bot message.

        Args:
            user: Who presses.
            message: The bot message carrying the inline keyboard.
            data: The button's callback_data.
            forged: Send ``data`` even if no button carries it (a tampered client).
        """
        with self.state.lock:
            presser = self._user(user)
            original = self._message(message)
            if original.get("from", {}).get("id") != self.state.bot.id:
                raise SimulationError("callback queries come from buttons on bot messages")
            if not forged and data not in _callback_data(original.get("reply_markup")):
                raise SimulationError(f"no button with callback_data {data!r}; pass forged=True")
            query_id = str(4_000_000_000_000 + int(self.state.new_token("")))
            self.state.callback_queries[query_id] = False
            payload = build.callback_query_json(query_id=query_id, user=presser, message=original, data=data)
            return self.state.push_update("callback_query", payload)

    def react(self, user: SimUser | int, message: MessageRef, emojis: list[str] | str) -> dict[str, Any]:
        """Queue a message_reaction: ``user`` replaces their reaction with ``emojis``.

        ``old_reaction`` is the user's previous reaction on that message, as Telegram
        reports it; pass ``[]`` to remove the reaction. Delivered only when the bot
        asked for ``message_reaction`` in allowed_updates (and is an admin in groups).
        """
        new = [emojis] if isinstance(emojis, str) else list(emojis)
        with self.state.lock:
            reactor = self._user(user)
            original = self._message(message)
            chat = self._chat(original["chat"]["id"])
            key = (chat.id, original["message_id"], reactor.id)
            old = self.state.reactions.get(key, [])
            new_types = build.reaction_types(new)
            self.state.reactions[key] = new_types
            payload = build.reaction_updated_json(
                chat=chat,
                message_id=original["message_id"],
                user=reactor,
                date=self.state.now(),
                old=old,
                new=new_types,
            )
            return self.state.push_update("message_reaction", payload)

    def vote_poll(
        self, user: SimUser | int, message: MessageRef, option_ids: list[int]
    ) -> dict[str, Any] | None:
        """A user votes in a poll the bot sent (``[]`` retracts the vote).

        Telegram sends the bot a ``poll`` update with the new counts and, for
        non-anonymous polls only, a ``poll_answer``. Returns the poll_answer update,
        or ``None`` for anonymous polls.
        """
        with self.state.lock:
            voter = self._user(user)
            original = self._message(message)
            poll = original.get("poll")
            if poll is None or poll["id"] not in self.state.polls:
                raise SimulationError("that message carries no poll the bot sent")
            entry = self.state.polls[poll["id"]]
            if entry.poll["is_closed"]:
                raise SimulationError("the poll is closed")
            options = entry.poll["options"]
            if any(i < 0 or i >= len(options) for i in option_ids) or len(set(option_ids)) != len(option_ids):
                raise SimulationError(f"invalid option ids {option_ids}")
            if len(option_ids) > 1 and not entry.poll["allows_multiple_answers"]:
                raise SimulationError("this poll allows one answer")
            if voter.id in entry.votes and not entry.poll["allows_revoting"]:
                raise SimulationError("this poll does not allow changing a vote")
            if voter.id in entry.votes and not entry.poll["allows_revoting"]:
                raise SimulationError("this poll does not allow changing a vote")
            for i in entry.votes.get(voter.id, []):
                options[i]["voter_count"] -= 1
            for i in option_ids:
                options[i]["voter_count"] += 1
            if option_ids:
                entry.votes[voter.id] = list(option_ids)
            else:
                entry.votes.pop(voter.id, None)
            entry.poll["total_voter_count"] = len(entry.votes)
            self.state.push_update("poll", dict(entry.poll, options=[dict(o) for o in options]))
            if entry.poll["is_anonymous"]:
                return None
            payload = build.poll_answer_json(
                poll_id=poll["id"],
                user=voter,
                option_ids=list(option_ids),
                persistent_ids=[options[i]["persistent_id"] for i in option_ids],
            )
            return self.state.push_update("poll_answer", payload)

    def _membership(
        self, chat: SimChat, user: SimUser, actor: SimUser, new: Member, kind: str
    ) -> dict[str, Any]:
        old = self.state.member(chat.id, user.id)
        if chat.type == "private":
            if new.status == "kicked":
                self.state.blocked_by.add(chat.id)
            else:
                self.state.blocked_by.discard(chat.id)
        else:
            self.state.members.setdefault(chat.id, {})[user.id] = new
        payload = build.chat_member_updated_json(
            chat=chat,
            actor=actor,
            date=self.state.now(),
            old=old.to_json(user),
            new=new.to_json(user),
        )
        return self.state.push_update(kind, payload)

    def member_joins(self, user: SimUser | int, chat: SimChat | int) -> dict[str, Any]:
        """A user joins a group: a ``new_chat_members`` service message and a chat_member update.

        Returns the chat_member update (delivered only if allowed_updates asks for it).
        """
        with self.state.lock:
            member, group = self._user(user), self._chat(chat)
            self._service_message(group, member, {"new_chat_members": [member.to_json()]})
            return self._membership(group, member, member, Member("member"), "chat_member")

    def member_leaves(self, user: SimUser | int, chat: SimChat | int) -> dict[str, Any]:
        """A user leaves a group: a ``left_chat_member`` service message and a chat_member update."""
        with self.state.lock:
            member, group = self._user(user), self._chat(chat)
            self._service_message(group, member, {"left_chat_member": member.to_json()})
            return self._membership(group, member, member, Member("left"), "chat_member")

    def _service_message(self, group: SimChat, member: SimUser, extra: dict[str, Any]) -> None:
        """Store and deliver the service message of a join or leave (channels show none)."""
        service = build.message_json(
            message_id=self.state.new_message_id(group.id),
            chat=group,
            date=self.state.now(),
            sender=member,
            extra=extra,
        )
        if group.type != "channel":
            self.state.store_message(service)
            self.state.push_update("message", service)

    def bot_added(self, chat: SimChat | int, by: SimUser | int, status: str = "member") -> dict[str, Any]:
        """Someone adds (or promotes) the bot in a group or channel: a my_chat_member update."""
        with self.state.lock:
            group, actor = self._chat(chat), self._user(by)
            rights = frozenset({"can_delete_messages"}) if status == "administrator" else frozenset()
            return self._membership(group, self.state.bot, actor, Member(status, rights), "my_chat_member")

    def bot_removed(self, chat: SimChat | int, by: SimUser | int) -> dict[str, Any]:
        """Someone removes the bot from a group or channel: a my_chat_member update."""
        with self.state.lock:
            group, actor = self._chat(chat), self._user(by)
            return self._membership(group, self.state.bot, actor, Member("kicked"), "my_chat_member")

    def block_bot(self, user: SimUser | int) -> dict[str, Any]:
        """The user blocks the bot: my_chat_member (member → kicked); later sends get 403."""
        with self.state.lock:
            person = self._user(user)
            chat = self._chat(person.id)
            return self._membership(chat, self.state.bot, person, Member("kicked"), "my_chat_member")

    def unblock_bot(self, user: SimUser | int) -> dict[str, Any]:
        """The user restarts the bot: my_chat_member (kicked → member)."""
        with self.state.lock:
            person = self._user(user)
            chat = self._chat(person.id)
            return self._membership(chat, self.state.bot, person, Member("member"), "my_chat_member")
