"""The keys of the wording catalogue: one enum per area, each member naming one text and the
placeholders the code fills in it.

A member is ``NAME = "key"`` or ``NAME = "key", "field", ...``: ``key`` is the text's name in its
area's TOML table, the fields are its placeholders (``{field}``). Every language's text for the key
must use exactly those fields (checked when the catalogue loads), and the code must pass exactly
those (checked at each lookup). Code refers to a key only as ``AreaKey.NAME``: the wording test
finds the keys no code uses by looking for that spelling.
"""

from __future__ import annotations

import enum


class WordingKey(enum.StrEnum):
    """One text of the catalogue; subclassed once per area."""

    #: The placeholders of the text, by name.
    fields: frozenset[str]

    def __new__(cls, key: str, *fields: str) -> WordingKey:
        member = str.__new__(cls, key)
        member._value_ = key
        member.fields = frozenset(fields)
        return member


class PromptKey(WordingKey):
    """What callers hear in the voice menu (``[ivr]``). Numbers arrive spelled digit by digit."""

    GREETING = "greeting"
    EMERGENCY = "emergency"
    LANGUAGE_OPTION = "language_option", "digit"
    MAIN_MENU = "main_menu"
    NOT_UNDERSTOOD = "not_understood"
    NO_INPUT = "no_input"
    CATEGORY_MENU = "category_menu"
    SCHOOL_ASK = "school_ask"
    SCHOOL_CODE_NOT_FOUND = "school_code_not_found", "code"
    SCHOOL_NOT_FOUND = "school_not_found"
    SCHOOL_CONFIRM = "school_confirm", "school"
    SCHOOL_UNKNOWN = "school_unknown"
    RECORD_INSTRUCTIONS = "record_instructions"
    RECORD_RETRY = "record_retry"
    REPORT_RECEIVED = "report_received"
    READBACK = "readback", "report_number", "pin"
    READBACK_WRITE_DOWN = "readback_write_down"
    READBACK_MENU = "readback_menu"
    GOODBYE = "goodbye"
    NO_MESSAGE_GOODBYE = "no_message_goodbye"
    FOLLOWUP_REPORT = "followup_report"
    FOLLOWUP_PIN = "followup_pin"
    FOLLOWUP_NO_MATCH = "followup_no_match"
    FOLLOWUP_LEAVE_MESSAGE = "followup_leave_message"
    MESSAGES_NONE = "messages_none"
    MESSAGES_INTRO = "messages_intro"
    MESSAGE_ITEM = "message_item", "number", "text"
    FOLLOWUP_MENU = "followup_menu"
    FOLLOWUP_RECORD = "followup_record"
    FOLLOWUP_ADDED = "followup_added"
    ERROR_APOLOGY = "error_apology"
    ERROR_THANKS = "error_thanks"
    CONFIRM_ASK = "confirm_ask"
    CONFIRM_NO_MATCH = "confirm_no_match"
    CONFIRM_OTHER_WAYS = "confirm_other_ways"
    CONFIRM_RECORDED = "confirm_recorded", "report_number"
    CONFIRM_MORE = "confirm_more"
    CONFIRM_GOODBYE = "confirm_goodbye"


class SmsKey(WordingKey):
    """The answers to people who text the hotline (``[sms]``)."""

    #: Added by the code to the end of every answer below but ``help``.
    SAFETY = "safety"
    #: Sent in every reporter language, one after the other (HELP does not say which).
    HELP = "help"
    NEW_TIP_WITH_PIN = "new_tip_with_pin", "report_number", "pin"
    NEW_TIP = "new_tip", "report_number"
    ADDED = "added", "report_number"
    EMPTY = "empty"
    APOLOGY = "apology"


class SmsContactKey(WordingKey):
    """The answers to school contacts who text the hotline to confirm (``[sms_contact]``)."""

    CONFIRMED = "confirmed", "report_number"
    ALREADY_CONFIRMED = "already_confirmed", "report_number"
    RECEIPT_RECORDED = "receipt_recorded", "report_number"
    REPORT_NUMBER_NEEDED = "report_number_needed", "example"
    NOT_SENT_TO_YOU = "not_sent_to_you", "report_number"
    HOW_TO_CONFIRM = "how_to_confirm", "example"
