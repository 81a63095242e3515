"""xAPI 2.0 statement validation: hand-made statements the LRS accepts, and ones it refuses
naming the field."""

import copy
from datetime import UTC, datetime

import pytest

from domain.xapi.application import prepare
from domain.xapi.comparison import same_statement
from domain.xapi.formats import parse_timestamp
from domain.xapi.validation import StatementInvalidError, validate_statement

BASE = {
    "actor": {"objectType": "Agent", "name": "Ann", "mbox": "mailto:ann@example.com"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "done"}},
    "object": {"objectType": "Activity", "id": "https://lms.example/course/7",
               "definition": {"name": {"zh-CN": "课程"}, "type":
                              "http://adlnet.gov/expapi/activities/course"}},
}


def with_(**changes):
    statement = copy.deepcopy(BASE)
    statement.update(changes)
    return statement


def refused(statement) -> str:
    with pytest.raises(StatementInvalidError) as caught:
        validate_statement(statement)
    return caught.value.field


VALID = {
    "minimal": BASE,
    "with id, timestamp, version": with_(id="b7f3a0d2-4a4e-4c59-9c6f-6f1de3e37f3b",
                                         timestamp="2024-05-02T09:30:00.123+08:00",
                                         version="1.0.3"),
    "account actor": with_(actor={"account": {"homePage": "https://lms.example/",
                                              "name": "L000123"}}),
    "anonymous group": with_(actor={"objectType": "Group", "member": [
        {"mbox_sha1sum": "a" * 40}, {"openid": "https://id.example/u/1"}]}),
    "result": with_(result={"score": {"scaled": 0.8, "raw": 8, "min": 0, "max": 10},
                            "success": True, "completion": True, "duration": "PT1H30M",
                            "extensions": {"https://x.example/e": None}}),
    "context": with_(context={
        "registration": "b7f3a0d2-4a4e-4c59-9c6f-6f1de3e37f3b", "platform": "moodle",
        "language": "zh-Hans-CN", "contextActivities": {"parent": {"id": "https://c/1"}},
        "contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": "mailto:t@x.y"},
                           "relevantTypes": ["https://x.example/teacher"]}]}),
    "voiding": with_(verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
                     object={"objectType": "StatementRef",
                             "id": "b7f3a0d2-4a4e-4c59-9c6f-6f1de3e37f3b"}),
    "substatement": with_(object={"objectType": "SubStatement", "actor": BASE["actor"],
                                  "verb": BASE["verb"], "object": {"id": "https://c/2"}}),
    "choice interaction": with_(object={"id": "https://q/1", "definition": {
        "interactionType": "choice", "correctResponsesPattern": ["a"],
        "choices": [{"id": "a", "description": {"en": "A"}}, {"id": "b"}]}}),
    "duration in weeks": with_(result={"duration": "P4W"}),
}


@pytest.mark.parametrize("statement", VALID.values(), ids=VALID.keys())
def test_accepts_a_valid_statement(statement):
    assert validate_statement(statement) is statement


INVALID = {
    "no actor": ({k: v for k, v in BASE.items() if k != "actor"}, "statement.actor"),
    "two IFIs": (with_(actor={"mbox": "mailto:a@b.c", "openid": "http://o/1"}), "actor"),
    "mbox without mailto": (with_(actor={"mbox": "ann@example.com"}), "actor.mbox"),
    "miscased key": (with_(verb={"ID": "http://v/1"}), "verb.ID"),
    "verb id without scheme": (with_(verb={"id": "adlnet.gov/verbs/x"}), "verb.id"),
    "bad language tag": (with_(verb={"id": "http://v/1", "display": {"a12345678": "x"}}),
                         "verb.display.a12345678"),
    "timestamp -00:00": (with_(timestamp="2008-09-15T15:53:00.601-00:00"), "timestamp"),
    "version 1.1.0": (with_(version="1.1.0"), "version"),
    "id not a UUID": (with_(id="MA97B177-9383-4934-8543-0F91A7A02836"), "id"),
    "scaled above 1": (with_(result={"score": {"scaled": 1.5}}), "result.score.scaled"),
    "raw above max": (with_(result={"score": {"raw": 11, "max": 10}}), "result.score.raw"),
    "bad duration": (with_(result={"duration": "PA1H0M0S"}), "result.duration"),
    "success as string": (with_(result={"success": "true"}), "result.success"),
    "platform with agent object": (with_(object={"objectType": "Agent",
                                                 "mbox": "mailto:b@x.y"},
                                         context={"platform": "x"}), "context.platform"),
    "agent object without objectType": (with_(object={"mbox": "mailto:b@x.y"}),
                                        "object.mbox"),
    "nested substatement": (with_(object={
        "objectType": "SubStatement", "actor": BASE["actor"], "verb": BASE["verb"],
        "object": {"objectType": "SubStatement"}}), "object.object.objectType"),
    "substatement with id": (with_(object={
        "objectType": "SubStatement", "id": "b7f3a0d2-4a4e-4c59-9c6f-6f1de3e37f3b",
        "actor": BASE["actor"], "verb": BASE["verb"], "object": BASE["object"]}),
        "object.id"),
    "anonymous group without members": (with_(actor={"objectType": "Group"}),
                                        "actor.member"),
    "group member a group": (with_(actor={"objectType": "Group", "member": [
        {"objectType": "Group", "mbox": "mailto:g@x.y"}]}), "actor.member[0].objectType"),
    "extension key not an IRI": (with_(result={"extensions": {"should fail": 1}}),
                                 "result.extensions.should fail"),
    "choices on a numeric interaction": (with_(object={"id": "https://q/1", "definition": {
        "interactionType": "numeric", "choices": []}}), "object.definition.choices"),
    "empty relevantTypes": (with_(context={"contextAgents": [
        {"objectType": "contextAgent", "agent": {"mbox": "mailto:t@x.y"},
         "relevantTypes": []}]}), "context.contextAgents[0].relevantTypes"),
    "identified authority group": (with_(authority={
        "objectType": "Group", "mbox": "mailto:g@x.y",
        "member": [{"mbox": "mailto:a@x.y"}, {"mbox": "mailto:b@x.y"}]}), "authority"),
    "voiding an activity": (with_(verb={"id": "http://adlnet.gov/expapi/verbs/voided"}),
                            "object"),
}


@pytest.mark.parametrize(("statement", "field"), INVALID.values(), ids=INVALID.keys())
def test_refuses_an_invalid_statement_naming_the_field(statement, field):
    assert refused(statement) == field


def test_a_timestamp_keeps_its_instant_and_unknown_offsets_are_refused():
    assert parse_timestamp("2024-05-02T09:30:00+08:00") == datetime(2024, 5, 2, 1, 30,
                                                                   tzinfo=UTC)
    for text in ("2008-09-15T15:53:00.601-00", "2008-09-15T15:53:00.601-0000", "01/011/2015"):
        assert parse_timestamp(text) is None


def test_the_lrs_sets_id_stored_timestamp_authority_and_keeps_the_version_sent():
    authority = {"objectType": "Agent", "account": {"homePage": "http://lrs/", "name": "k"}}
    sent = with_(version="1.0.3", context={"contextActivities": {"parent": {"id": "http://c"}}})
    kept = prepare(sent, stored=datetime(2024, 5, 2, 1, 30, tzinfo=UTC), authority=authority)
    assert kept["stored"] == kept["timestamp"] == "2024-05-02T01:30:00.000Z"
    assert kept["authority"] == authority and kept["version"] == "1.0.3" and "id" in kept
    assert kept["context"]["contextActivities"]["parent"] == [{"id": "http://c"}]
    assert "id" not in sent  # the client's statement is not changed


def test_a_resend_is_the_same_statement_whatever_the_lrs_set_but_other_content_is_not():
    sent = with_(id="b7f3a0d2-4a4e-4c59-9c6f-6f1de3e37f3b")
    kept = prepare(sent, stored=datetime(2024, 5, 2, tzinfo=UTC), authority={"mbox": "mailto:x@y"})
    assert same_statement(sent, kept)
    assert not same_statement(with_(id=sent["id"], result={"success": False}), kept)


def multipart(*parts: tuple[dict, bytes], boundary: str = "b0undary") -> tuple[str, bytes]:
    body = b""
    for headers, content in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        body += f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n"
    return f"multipart/mixed; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def test_a_multipart_statement_brings_its_attachment_and_a_missing_part_is_refused():
    import hashlib
    import json

    from domain.xapi.attachments import check_attachments, parse_multipart

    content = b"here is a simple attachment"
    sha2 = hashlib.sha256(content).hexdigest()
    attachment = {"usageType": "http://x.example/usage", "display": {"en": "a"},
                  "contentType": "text/plain", "length": len(content), "sha2": sha2}
    statement = with_(attachments=[attachment])
    content_type, body = multipart(
        ({"Content-Type": "application/json"}, json.dumps(statement).encode()),
        ({"Content-Type": "text/plain", "Content-Transfer-Encoding": "binary",
          "X-Experience-API-Hash": sha2}, content))
    statement_json, parts = parse_multipart(content_type, body)
    assert json.loads(statement_json) == statement and parts[0].content == content
    check_attachments([statement], parts)
    with pytest.raises(StatementInvalidError) as caught:
        check_attachments([statement], [])
    assert caught.value.field == "[0].attachments[0]"
    wrong_hash = multipart(({"Content-Type": "application/json"}, b"{}"),
                           ({"Content-Transfer-Encoding": "binary",
                             "X-Experience-API-Hash": "0" * 64}, content))
    with pytest.raises(StatementInvalidError):
        parse_multipart(*wrong_hash)
