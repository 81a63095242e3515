"""Page strings in Chinese (the default) and English (`?lang=en`)."""

from __future__ import annotations

import re
from typing import Literal

Lang = Literal["zh", "en"]

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("学习档案", "StudyLedger"),
    "board": ("学分排名", "Ranking board"),
    "rank": ("名次", "Rank"),
    "name": ("姓名", "Name"),
    "unit": ("单位", "Unit"),
    "score": ("学分", "Score"),
    "requirement_line": ("本周期要求", "This period requires"),
    "org_picker": ("选择单位", "Choose a unit"),
    "show": ("查看", "Show"),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "no_entries": ("暂无记录", "No entries"),
    "archive": ("学习档案", "Learning archive"),
    "category": ("类别", "Category"),
    "raw": ("原始", "Raw"),
    "counted": ("计入", "Counted"),
    "excess": ("超出上限", "Above cap"),
    "cap": ("上限", "Cap"),
    "requirements": ("达标要求", "Requirements"),
    "required": ("必修", "Required"),
    "required_amount": ("要求", "Required"),
    "actual": ("实际", "Actual"),
    "shortfall": ("差额", "Shortfall"),
    "shortfalls": ("未达标项", "Short of"),
    "total_shortfall": ("差额合计", "Total shortfall"),
    "met": ("已达标", "Met"),
    "short": ("未达标", "Short"),
    "annual_checks": ("年度审核", "Annual checks"),
    "year": ("年度", "Year"),
    "status": ("状态", "Status"),
    "promotion": ("晋升", "Promotion"),
    "eligible": ("可晋升", "Eligible"),
    "make_up_required": ("需补足学分", "Make-up required"),
    "credits_per_year": ("各年度学分", "Credits per year"),
    "audit_trail": ("档案记录", "Audit trail"),
    "occurred": ("发生时间", "Occurred"),
    "type": ("类型", "Type"),
    "effect": ("学分影响", "Credit effect"),
    "hash": ("哈希", "Hash"),
    "removed": ("已撤销", "removed"),
    "voided_by": ("被撤销于", "voided by"),
    "certificate": ("学时证明书", "Study-hour certificate"),
    "classes": ("脱产培训", "Classes"),
    "courses": ("网络课程", "Online courses"),
    "hours": ("学时", "Hours"),
    "date": ("日期", "Date"),
    "kind": ("类别", "Kind"),
    "centralized_hours": ("集中培训学时", "Centralized hours"),
    "online_hours": ("网络学习学时", "Online hours"),
    "required_course_hours": ("必修课学时", "Required-course hours"),
    "total_hours": ("合计学时", "Total hours"),
    "issued_on": ("签发日期", "Issued on"),
    "verification_code": ("验证码", "Verification code"),
    "verify_at": ("验证网址", "Verify at"),
    "print": ("打印 / 另存为 PDF", "Print / save as PDF"),
    "verify_certificate": ("证明书验证", "Verify a certificate"),
    "code": ("验证码", "Code"),
    "verify": ("验证", "Verify"),
    "valid": ("验证通过：与当前档案一致", "Valid: it matches the current record"),
    "changed": ("档案已变更：证明书签发后记录有更正（如撤销），请重新开具",
                "The record has changed since this certificate was issued (for example a "
                "later void); ask for a new one"),
    "unknown_code": ("未查到该验证码：没有以此验证码签发的证明书，请核对后重试",
                     "No certificate was issued with this code; check it and try again"),
    "preview_notice": ("预览：尚未签发，无验证码。签发后记录在案，可公开验证。",
                       "Preview: not issued, no code yet. Once issued it is recorded and "
                       "anyone can verify it."),
    "issue_certificate": ("签发证明书", "Issue the certificate"),
    "issuing_unit": ("签发单位", "Issued by"),
    "seal_line": ("（签发单位盖章）", "(seal of the issuing unit)"),
    "as_issued": ("签发时", "As issued"),
    "as_now": ("当前档案", "Record now"),
    "elective": ("选修", "Elective"),
    "thematic": ("专题培训", "Thematic"),
    "qualification": ("任职培训", "Qualification"),
    "advancement": ("提升培训", "Advancement"),
    "advanced_seminar": ("高级研修", "Advanced seminar"),
    "induction": ("初任培训", "Induction"),
    "compliance": ("达标情况", "Compliance"),
    "learners_in_scope": ("范围内人数", "Learners in scope"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "sort_by": ("排序", "Sort by"),
    "login": ("使用密钥登录", "Sign in with an API key"),
    "api_key": ("API 密钥", "API key"),
    "sign_in": ("登录", "Sign in"),
    "error": ("出错了", "Something is wrong"),
    "policy": ("政策", "Policy"),
    "period": ("周期", "Period"),
    "switch_lang": ("English", "中文"),
    "home": ("首页", "Home"),
    "logout": ("退出登录", "Sign out"),
    "compliance_rate": ("达标率", "Compliance rate"),
    "meeting": ("达标人数", "Meeting"),
    "latest_cycle_shown": ("当前周期尚无学分记录，显示最近有记录的周期",
                           "The current cycle has no credits yet: showing the latest one"),
    "search_learner": ("查找学员", "Find a learner"),
    "search_hint": ("学员编号或姓名", "Learner id or name"),
    "search": ("查找", "Search"),
    "search_more": ("结果较多，仅显示前 50 条，请输入更完整的编号或姓名",
                    "Only the first 50 are shown: type more of the id or name"),
    "home_signed_out": ("登录后可查看本单位达标率、达标情况名单和学员档案。",
                        "Sign in to see your unit's compliance rate, the compliance list "
                        "and learner archives."),
    "all_units": ("全部单位", "All units"),
    "previous_page": ("上一页", "Previous page"),
    "page_of": ("第 %d / %d 页", "Page %d of %d"),
    "basic": ("基础学分", "Basic"),
    "comprehensive": ("综合学分", "Comprehensive"),
    "self_study": ("在职自学", "Self-study"),
    "theory": ("理论成果", "Theory"),
    "performance": ("工作实绩", "Performance"),
    "org": ("单位", "Org"),
    "learner": ("学员", "Learner"),
    "dadukou-double-100": ("大渡口区干部学习“双百”学分制", "Dadukou double-100 credits"),
    "cadre-regs-2023": ("《干部教育培训工作条例》学时要求",
                        "Cadre training regulations (2023) hours"),
}


# What each kind of fact is called on a page (the trail shows words, not type codes).
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "learner.registered": ("建立档案", "Registered"),
    "learner.transferred": ("调动单位", "Transferred"),
    "training.attended": ("脱产培训", "Class attended"),
    "study_session.recorded": ("网络学习", "Online study"),
    "exam.graded": ("考试成绩", "Exam graded"),
    "assignment.submitted": ("提交作业", "Assignment submitted"),
    "assignment.reviewed": ("作业评审", "Assignment reviewed"),
    "declaration.submitted": ("学分申报", "Credit declared"),
    "declaration.reviewed": ("申报审核", "Declaration reviewed"),
    "achievement.recorded": ("理论成果", "Achievement"),
    "award.granted": ("表彰奖励", "Award"),
    "penalty.recorded": ("处分记录", "Penalty"),
    "credits.adjusted": ("学分调整", "Credits adjusted"),
    "record.voided": ("撤销记录", "Record voided"),
    "org.registered": ("单位登记", "Org registered"),
    "org.board_published": ("公开排名", "Board published"),
}

# The error messages the pages can meet, in Chinese: (pattern over the English message,
# the Chinese with the pattern's groups). English stays the API's language (and ?lang=en's).
MESSAGES: list[tuple[str, str]] = [
    (r"org (\S+) is not registered", "单位 {0} 未登记"),
    (r"learner (\S+) is not registered", "学员 {0} 未登记"),
    (r"this page shows personal records.*", "此页面包含个人档案：请使用审计或管理员 API 密钥登录"),
    (r"the API key is unknown or has been revoked.*", "API 密钥无效或已被吊销，请重新登录"),
    (r"an? (\w+) key may not read learner records.*", "{0} 类密钥无权查看学员档案"),
    (r"(?:org|learner) (\S+) (?:belongs to org \S+, )?outside the subtree.*|"
     r"org (\S+) is outside the subtree.*", "无权查看：{0}{1} 不在您的密钥所管辖的单位范围内"),
    (r"the board of org (\S+) is not published.*",
     "单位 {0} 的学分排名未公开（由该单位管理员开启）"),
    (r"public boards are per org.*", "请选择一个单位（?org=单位编号）"),
    (r"period (\S+) has not started yet.*", "周期 {0} 尚未开始，不能开具证明书"),
    (r"period '([^']*)' is neither a year.*",
     "周期“{0}”格式不对：应为年度（如 2023）或周期（如 2021-2025）"),
    (r"period '([^']*)' is not a cycle of \S+; cycles run (\d+) years, e\.g\. (\S+)",
     "“{0}”不是有效的考核周期：周期为 {1} 年，例如 {2}"),
    (r"unknown policy '([^']*)'.*", "未知的政策：{0}"),
    (r"no certificate (\S+) was issued to (\S+) for (\S+)",
     "没有为 {1} 签发过 {2} 年度的证明书 {0}"),
    (r"query\.(\w+): Field required", "缺少参数 {0}"),
    (r"the cursor is not one this listing handed out.*", "翻页参数无效，请从第一页重新开始"),
]


def translate_message(message: str, lang: Lang) -> str:
    """An error message for a page, in the page's language."""
    if lang == "en":
        return message
    for pattern, chinese in MESSAGES:
        if match := re.fullmatch(pattern, message, re.S):
            return chinese.format(*(g or "" for g in match.groups()))
    return f"请求无法完成（{message}）"


def event_word(fact_type: str, lang: Lang) -> str:
    pair = EVENT_TYPES.get(fact_type)
    return fact_type if pair is None else pair[0 if lang == "zh" else 1]


def translator(lang: Lang) -> dict[str, str]:
    index = 0 if lang == "zh" else 1
    return {key: pair[index] for key, pair in STRINGS.items()}


def pick_lang(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"
