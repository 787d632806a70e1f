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
    # The guided intake (:mod:`sms.intake`): what the bot asks for.
    ASK_SCHOOL = "ask_school"
    CONFIRM_SCHOOL = "confirm_school", "school"
    #: {choices} is `school_choice` for each school offered, joined by ", ".
    CHOOSE_SCHOOL = "choose_school", "choices"
    SCHOOL_CHOICE = "school_choice", "number", "school"
    ASK_WHAT = "ask_what"
    HANDED_TO_AGENT = "handed_to_agent"
    #: ``TIP <report number> <PIN> <words>`` that matched no report (or a locked one).
    FOLLOWUP_NOT_FOUND = "followup_not_found"


class SmsContactKey(WordingKey):
    """The answers to school contacts who text the hotline to confirm (``[sms_contact]``)."""

    CONFIRMED = "confirmed", "report_number"
    ALREADY_CONFIRMED = "already_confirmed", "report_number"
    RECEIPT_RECORDED = "receipt_recorded", "report_number"
    REPORT_NUMBER_NEEDED = "report_number_needed", "example"
    NOT_SENT_TO_YOU = "not_sent_to_you", "report_number"
    HOW_TO_CONFIRM = "how_to_confirm", "example"


class AlertCallKey(WordingKey):
    """What a contact hears on an alert call and its voicemail (``[alert_call]``)."""

    ALERT_ONE = "alert_one", "level", "school", "report_number", "kind", "summary"
    ALERT_MANY = "alert_many", "count", "reports"
    ALERT_MANY_ITEM = "alert_many_item", "report_number", "school", "kind"
    SCHOOL_UNKNOWN = "school_unknown"
    TYPE_UNSPECIFIED = "type_unspecified"
    CAME_IN = "came_in", "channel", "time"
    CHANNEL_VOICE = "channel_voice"
    CHANNEL_SMS = "channel_sms"
    CHANNEL_WEB = "channel_web"
    CHANNEL_OTHER = "channel_other"
    REPORTER_WROTE = "reporter_wrote", "words"
    VOICEMAIL = "voicemail", "reports", "how_to_confirm"
    VOICEMAIL_ITEM = "voicemail_item", "report_number", "school"
    HOW_TO_CONFIRM_LATER = "how_to_confirm_later", "number", "menu_key"
    NOT_CONFIRMED_GOODBYE = "not_confirmed_goodbye", "how_to_confirm"
    CONFIRMATION_RECORDED = "confirmation_recorded", "reports"
    CONFIRMED_BY_SOMEONE_ELSE = "confirmed_by_someone_else", "reports"
    ALREADY_CONFIRMED = "already_confirmed", "reports"
    COLLEAGUE_JUST_CONFIRMED = "colleague_just_confirmed"
    CALL_US_BACK = "call_us_back"
    FALLBACK = "fallback"
    NOT_RECORDED = "not_recorded"


class AlertTextKey(WordingKey):
    """The texts sent to contacts about a tip (``[alert_text]``)."""

    ALERT = "alert", "level", "report_number", "school", "portal_url"
    UPDATE_ONE = "update_one", "report_number", "school", "portal_url"
    UPDATE_MANY = "update_many", "report_number", "school", "count", "portal_url"
    SCHOOL_UNKNOWN = "school_unknown"


class EmailKey(WordingKey):
    """The notification e-mails about a tip (``[email]``)."""

    SUBJECT_ALERT = "subject_alert", "level", "report_number", "school"
    SUBJECT_UPDATE = "subject_update", "level", "report_number", "school"
    SUBJECT_ESCALATION = "subject_escalation", "level", "report_number", "school"
    SUBJECT_SCHOOL_UNKNOWN = "subject_school_unknown"
    OPENING_ALERT = "opening_alert", "about"
    OPENING_ALERT_DISTRICT = "opening_alert_district", "district", "about"
    OPENING_UPDATE = "opening_update", "about", "note"
    OPENING_ESCALATION = "opening_escalation", "about"
    ABOUT_SCHOOL = "about_school", "school"
    ABOUT_NO_SCHOOL = "about_no_school"
    UPDATE_NOTE_DEFAULT = "update_note_default"
    ESCALATION_NOTE = "escalation_note"
    FIELD_REPORT_NUMBER = "field_report_number"
    FIELD_SCHOOL = "field_school"
    FIELD_SCHOOL_UNKNOWN = "field_school_unknown"
    FIELD_LEVEL = "field_level"
    FIELD_ABOUT = "field_about"
    FIELD_RECEIVED = "field_received"
    LEVEL_CRITICAL = "level_critical"
    LEVEL_STANDARD = "level_standard"
    LEVEL_OTHER = "level_other"
    ABOUT_UNCLASSIFIED = "about_unclassified"
    ABOUT_REPORTER_CATEGORY = "about_reporter_category", "category"
    CATEGORY_THREAT = "category_threat"
    CATEGORY_SELF_HARM = "category_self_harm"
    CATEGORY_BULLYING = "category_bullying"
    CATEGORY_DRUGS = "category_drugs"
    CATEGORY_OTHER = "category_other"
    PORTAL_HEADING = "portal_heading"
    PORTAL_LINK = "portal_link"
    PORTAL_LINK_NOTE = "portal_link_note", "link"
    HOW_TO_CONFIRM = "how_to_confirm", "code", "to", "menu_key"
    HOTLINE_NUMBER_UNKNOWN = "hotline_number_unknown"
    SUMMARY_LABEL = "summary_label"
    FOOTER = "footer"


class TipTypeKey(WordingKey):
    """A tip's type in plain words, on alert calls and in e-mails (``[tip_type]``). Each value
    is the type's code (``dispatcher.levels.TIP_TYPES``)."""

    SELF_HARM = "self_harm"
    PLANNED_ATTACK = "planned_attack"
    WEAPON = "weapon"
    BOMB_THREAT = "bomb_threat"
    THREAT_OF_VIOLENCE = "threat_of_violence"
    CRIME_AGAINST_PERSON = "crime_against_person"
    IN_PROGRESS = "in_progress"
    BULLYING = "bullying"
    CYBERBULLYING = "cyberbullying"
    DISCRIMINATION = "discrimination"
    HARASSMENT = "harassment"
    HAZING = "hazing"
    RUNAWAY = "runaway"
    SMOKING = "smoking"
    VAPING = "vaping"
    DRUGS = "drugs"
    DRUG_POSSESSION = "drug_possession"
    DRUG_USE = "drug_use"
    DRUG_DISTRIBUTION = "drug_distribution"
    STAFF_MISCONDUCT = "staff_misconduct"
    COMPLAINT = "complaint"
    INFORMATION_REQUEST = "information_request"
    INCOMPLETE_INFORMATION = "incomplete_information"
    FALSE_REPORT = "false_report"
    MISUSE = "misuse"
