//! English and Arabic: every string a page shows, and numbers, amounts and dates
//! formatted for each (Arabic uses Arabic-Indic digits and its own separators, and
//! pages are laid out right to left).

use mizan_app::identity::WALLET_CURRENCY;
use mizan_app::payments::{self, PaymentError};
use mizan_core::{Currency, Money};

/// A page's language. English unless the person chose Arabic (a cookie) or their
/// browser asks for it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ar,
}

impl Lang {
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "ar" => Some(Lang::Ar),
            _ => None,
        }
    }

    /// The `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ar => "ar",
        }
    }

    /// The `dir` attribute.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::En => "ltr",
            Lang::Ar => "rtl",
        }
    }

    /// The language an `Accept-Language` header prefers (its first tag we speak).
    pub fn from_accept_language(header: &str) -> Lang {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .map(|tag| tag.trim().to_ascii_lowercase())
            .find_map(|tag| Lang::parse(tag.split('-').next().unwrap_or_default()))
            .unwrap_or_default()
    }
}

macro_rules! texts {
    ($($name:ident => $en:literal, $ar:literal;)*) => {
        /// A string a page shows; [`T::get`] gives it in a language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($name),* }

        impl T {
            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$name, Lang::En) => $en, (T::$name, Lang::Ar) => $ar,)*
                }
            }
        }

        #[cfg(test)]
        const ALL_TEXTS: &[T] = &[$(T::$name),*];
    };
}

texts! {
    AppName => "Mizan", "ميزان";
    Tagline => "Send, receive and hold money with the people you follow.", "أرسل المال واستلمه واحتفظ به مع من تتابعهم.";
    SkipToContent => "Skip to content", "انتقل إلى المحتوى";
    Home => "Home", "الرئيسية";
    Send => "Send", "إرسال";
    RequestMoney => "Request", "طلب";
    Requests => "Requests", "الطلبات";
    Split => "Split a bill", "تقسيم فاتورة";
    AddMoney => "Add money", "إضافة رصيد";
    CashOut => "Cash out", "سحب إلى البنك";
    Activity => "Activity", "النشاط";
    Apps => "Linked apps", "التطبيقات المرتبطة";
    Settings => "Settings", "الإعدادات";
    LogOut => "Log out", "تسجيل الخروج";
    LogIn => "Log in", "تسجيل الدخول";
    SignUp => "Create an account", "إنشاء حساب";
    MainMenu => "Main menu", "القائمة الرئيسية";
    Handle => "Handle", "اسم المستخدم";
    HandleHint => "3 to 30 letters, digits or _", "من 3 إلى 30 حرفًا لاتينيًا أو رقمًا أو _";
    Email => "Email", "البريد الإلكتروني";
    Password => "Password", "كلمة المرور";
    PasswordHint => "At least 10 characters", "10 أحرف على الأقل";
    FullLegalName => "Full legal name", "الاسم القانوني الكامل";
    FullLegalNameHint => "As on your ID. Kept encrypted; never shown on your profile.", "كما في هويتك. يُحفظ مشفّرًا ولا يظهر في ملفك.";
    HandleOrEmail => "Handle or email", "اسم المستخدم أو البريد الإلكتروني";
    NoAccount => "New to Mizan?", "جديد على ميزان؟";
    HaveAccount => "Already have an account?", "لديك حساب بالفعل؟";
    Balance => "Balance", "الرصيد";
    Available => "Available", "المتاح";
    OnHold => "On hold", "محجوز";
    Incoming => "On its way to you", "في الطريق إليك";
    RecentActivity => "Recent activity", "أحدث النشاط";
    SeeAll => "See all activity", "عرض كل النشاط";
    NoActivity => "Nothing yet. Add money or ask a friend to send you some.", "لا شيء بعد. أضف رصيدًا أو اطلب من صديق أن يرسل لك.";
    To => "To", "إلى";
    From => "From", "من";
    Amount => "Amount", "المبلغ";
    AmountHint => "In US dollars, e.g. 12.50", "بالدولار الأمريكي، مثل 12.50";
    Note => "Note (optional)", "ملاحظة (اختيارية)";
    SendMoney => "Send money", "إرسال المال";
    Sending => "Sending…", "جارٍ الإرسال…";
    Working => "Working…", "جارٍ التنفيذ…";
    Sent => "Sent", "تم الإرسال";
    Received => "Received", "تم الاستلام";
    ReceivedLive => "You received", "استلمت";
    FromWord => "from", "من";
    AskFor => "Ask for money", "اطلب مالًا";
    Ask => "Send request", "إرسال الطلب";
    RequestSent => "Request sent.", "تم إرسال الطلب.";
    RequestsToPay => "Waiting for you", "بانتظارك";
    RequestsYouMade => "You asked", "طلباتك";
    NoRequests => "No requests.", "لا توجد طلبات.";
    Pay => "Pay", "ادفع";
    Decline => "Decline", "رفض";
    Cancel => "Cancel", "إلغاء";
    StatusOpen => "Open", "مفتوح";
    StatusPaid => "Paid", "مدفوع";
    StatusDeclined => "Declined", "مرفوض";
    StatusCancelled => "Cancelled", "ملغى";
    SplitPeople => "People to split with", "الأشخاص المشاركون";
    SplitPeopleHint => "Handles separated by commas or spaces", "أسماء مستخدمين تفصل بينها فواصل أو مسافات";
    SplitTotal => "Total you paid", "المبلغ الإجمالي الذي دفعته";
    SplitSubmit => "Split equally", "قسّم بالتساوي";
    SplitDone => "Requests sent to everyone.", "تم إرسال الطلبات إلى الجميع.";
    CardNumber => "Card number", "رقم البطاقة";
    CardHint => "Sandbox cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 9995 is declined, 4000 0000 0000 3220 asks for a code.", "بطاقات تجريبية: 4242 4242 4242 4242 تنجح، و4000 0000 0000 9995 تُرفض، و4000 0000 0000 3220 تطلب رمزًا.";
    AddFromCard => "Add from card", "أضف من البطاقة";
    MoneyAdded => "Money added.", "تمت إضافة الرصيد.";
    ChallengeTitle => "Confirm with your bank", "التأكيد مع البنك";
    ChallengeHint => "Your bank sent a code. (Sandbox: 123456)", "أرسل البنك رمزًا. (تجريبي: 123456)";
    Code => "Code", "الرمز";
    Confirm => "Confirm", "تأكيد";
    RoutingNumber => "Routing number", "رقم التوجيه";
    AccountNumber => "Account number", "رقم الحساب";
    BankHint => "Sandbox: routing 021000021; an account ending 0000 is closed.", "تجريبي: رقم التوجيه 021000021؛ الحساب المنتهي بـ 0000 مغلق.";
    CashOutSubmit => "Cash out", "اسحب";
    CashOutDone => "On its way to your bank.", "في الطريق إلى حسابك البنكي.";
    AllTypes => "All", "الكل";
    TypePayment => "Payments", "المدفوعات";
    TypeFunding => "Money added", "الإيداعات";
    TypeCashout => "Cash-outs", "السحوبات";
    Filter => "Filter", "تصفية";
    With => "With (handle)", "مع (اسم المستخدم)";
    FromDate => "From", "من تاريخ";
    ToDate => "To", "إلى تاريخ";
    ErrDate => "Pick a start date on or before the end date.", "اختر تاريخ بداية لا يتجاوز تاريخ النهاية.";
    Older => "Older", "الأقدم";
    Receipt => "Receipt", "الإيصال";
    Date => "Date", "التاريخ";
    Status => "Status", "الحالة";
    TransferId => "Ledger transfer", "تحويل السجل";
    ChainHash => "Chain hash", "بصمة السلسلة";
    ReceiptHint => "The ledger's hash chain covers this transfer: any change to it would show.", "سلسلة البصمات في السجل تغطي هذا التحويل: أي تغيير فيه سيظهر.";
    NoApps => "No apps are linked to you.", "لا توجد تطبيقات مرتبطة بك.";
    Revoke => "Revoke", "إلغاء الربط";
    Approve => "Approve", "موافقة";
    LinkRequests => "Apps asking to link", "تطبيقات تطلب الربط";
    Scopes => "Can", "الصلاحيات";
    Language => "Language", "اللغة";
    Sessions => "Signed-in devices", "الأجهزة المسجلة";
    ThisDevice => "This device", "هذا الجهاز";
    ChangePassword => "Change password", "تغيير كلمة المرور";
    CurrentPassword => "Current password", "كلمة المرور الحالية";
    NewPassword => "New password", "كلمة المرور الجديدة";
    PasswordChanged => "Password changed; other devices were signed out.", "تم تغيير كلمة المرور وتسجيل خروج الأجهزة الأخرى.";
    TwoFactor => "Two-factor authentication", "التحقق بخطوتين";
    TwoFactorOn => "On: large payments ask for a code from your authenticator app.", "مفعّل: المدفوعات الكبيرة تطلب رمزًا من تطبيق المصادقة.";
    TwoFactorOff => "Off. Turn it on to protect large payments.", "غير مفعّل. فعّله لحماية المدفوعات الكبيرة.";
    TwoFactorStart => "Set up two-factor", "إعداد التحقق بخطوتين";
    TwoFactorSecret => "Add this key to your authenticator app, then enter the code it shows.", "أضف هذا المفتاح إلى تطبيق المصادقة ثم أدخل الرمز الذي يظهر.";
    TwoFactorDone => "Two-factor authentication is on.", "تم تفعيل التحقق بخطوتين.";
    StepUpNeeded => "This amount needs a code from your authenticator app.", "هذا المبلغ يتطلب رمزًا من تطبيق المصادقة.";
    AuthenticatorCode => "Authenticator code", "رمز المصادقة";
    CodeForLargeAmounts => "Only needed for larger amounts.", "مطلوب للمبالغ الكبيرة فقط.";
    Created => "Created", "تاريخ الإنشاء";
    Expires => "Expires", "ينتهي";
    Save => "Save", "حفظ";
    NotFound => "We couldn't find that page.", "لم نجد هذه الصفحة.";
    SomethingWrong => "Something went wrong on our side. Nothing was charged twice; please try again.", "حدث خطأ من جهتنا. لم يُخصم أي مبلغ مرتين؛ يرجى المحاولة مجددًا.";
    FormExpired => "This form expired. Please try again.", "انتهت صلاحية النموذج. يرجى المحاولة مجددًا.";
    Busy => "Too many attempts. Wait a moment and try again.", "محاولات كثيرة. انتظر قليلًا ثم حاول مجددًا.";
    ErrBadAmount => "Enter an amount like 12.50.", "أدخل مبلغًا مثل 12.50.";
    ErrAmountPositive => "The amount must be more than zero.", "يجب أن يكون المبلغ أكبر من صفر.";
    ErrAmountLarge => "That amount is too large.", "هذا المبلغ كبير جدًا.";
    ErrTooPrecise => "Use at most two decimal places.", "استخدم منزلتين عشريتين على الأكثر.";
    ErrNoSuchHandle => "Nobody has that handle.", "لا يوجد أحد بهذا الاسم.";
    ErrSelf => "You can't send money to yourself.", "لا يمكنك إرسال المال لنفسك.";
    ErrSelfRequest => "You can't ask yourself for money.", "لا يمكنك طلب المال من نفسك.";
    ErrFunds => "Your balance is too low for this.", "رصيدك غير كافٍ لهذه العملية.";
    ErrNoteLong => "Keep the note under 280 characters.", "اجعل الملاحظة أقل من 280 حرفًا.";
    ErrCard => "Enter the card number (12 to 19 digits).", "أدخل رقم البطاقة (من 12 إلى 19 رقمًا).";
    ErrDeclinedFunds => "Your card was declined: not enough funds on the card.", "رُفضت البطاقة: الرصيد غير كافٍ.";
    ErrDeclinedStolen => "Your card was declined. Contact your bank.", "رُفضت البطاقة. تواصل مع البنك.";
    ErrDeclined => "Your card was declined.", "رُفضت البطاقة.";
    ErrChallenge => "That code didn't match. Try again.", "الرمز غير صحيح. حاول مجددًا.";
    ErrRouting => "Enter a valid 9-digit routing number.", "أدخل رقم توجيه صحيحًا من 9 أرقام.";
    ErrAccount => "Enter the account number (4 to 17 digits).", "أدخل رقم الحساب (من 4 إلى 17 رقمًا).";
    ErrReturned => "Your bank returned the transfer; the money is back in your wallet.", "أعاد البنك التحويل؛ عاد المبلغ إلى محفظتك.";
    ErrRequestClosed => "This request is no longer open.", "هذا الطلب لم يعد مفتوحًا.";
    ErrSplitPeople => "Split with 1 to 20 other people, each named once.", "قسّم مع 1 إلى 20 شخصًا آخرين، كل اسم مرة واحدة.";
    ErrHandle => "Use 3 to 30 letters, digits or _.", "استخدم من 3 إلى 30 حرفًا لاتينيًا أو رقمًا أو _.";
    ErrEmail => "Enter an email address like name@example.com.", "أدخل بريدًا إلكترونيًا مثل name@example.com.";
    ErrWeakPassword => "Use at least 10 characters.", "استخدم 10 أحرف على الأقل.";
    ErrHandleTaken => "That handle is taken.", "اسم المستخدم مستخدم بالفعل.";
    ErrEmailTaken => "An account already uses that email.", "هناك حساب يستخدم هذا البريد بالفعل.";
    ErrCredentials => "That handle or password is wrong.", "اسم المستخدم أو كلمة المرور غير صحيحة.";
    ErrWrongPassword => "Your current password is wrong.", "كلمة المرور الحالية غير صحيحة.";
    ErrTotpCode => "That code is wrong or already used.", "الرمز غير صحيح أو مستخدم من قبل.";
    ErrInProgress => "We're still working on your last try. Wait a moment.", "ما زلنا ننفذ محاولتك السابقة. انتظر قليلًا.";
    ErrLimit => "That would go over your limit for now. Verify your identity to raise it.", "هذا يتجاوز حدك الحالي. وثّق هويتك لرفعه.";
    ErrUnavailable => "This isn't available where you live yet.", "هذه الخدمة غير متاحة في مكان إقامتك بعد.";
    ErrVerify => "Verify your identity first to do this.", "وثّق هويتك أولًا للقيام بذلك.";
    ErrFrozen => "Money can't leave your account right now. Contact support.", "لا يمكن إخراج المال من حسابك الآن. تواصل مع الدعم.";
    Verification => "Verification and limits", "التوثيق والحدود";
    VerificationLink => "See your limits and verify your identity", "اطّلع على حدودك ووثّق هويتك";
    Tier0 => "You haven't verified your identity: your limits are small and you can't cash out.", "لم توثّق هويتك بعد: حدودك صغيرة ولا يمكنك السحب إلى البنك.";
    Tier1 => "Your identity is verified. Verify a document to raise your limits further.", "هويتك موثّقة. وثّق مستندًا لرفع حدودك أكثر.";
    Tier2 => "Your identity and document are verified.", "هويتك ومستندك موثّقان.";
    FullyVerified => "You have the highest limits Mizan offers.", "لديك أعلى الحدود التي يقدمها ميزان.";
    NotAvailableHere => "Not available where you live yet:", "غير متاح في مكان إقامتك بعد:";
    CapabilityP2p => "Payments", "المدفوعات";
    CapabilitySavings => "Savings", "الادخار";
    CapabilityCards => "Cards", "البطاقات";
    YourLimits => "Your limits", "حدودك";
    Limit => "Limit", "الحد";
    Used => "Used", "المستخدم";
    Resets => "Resets", "يتجدد";
    NotAllowedYet => "Not allowed yet", "غير مسموح بعد";
    LimitDailySend => "Sent today", "المُرسل اليوم";
    LimitWeeklySend => "Sent this week", "المُرسل هذا الأسبوع";
    LimitWeeklyCashout => "Cashed out this week", "المسحوب هذا الأسبوع";
    LimitWeeklyFunding => "Added this week", "المُضاف هذا الأسبوع";
    VerifyIdentity => "Verify your identity", "وثّق هويتك";
    VerifyIdentityHint => "Our identity provider checks these details; Mizan keeps only its answer.", "يتحقق مزوّد الهوية من هذه البيانات؛ ولا يحتفظ ميزان إلا بنتيجة التحقق.";
    VerifyDocument => "Verify a document", "وثّق مستندًا";
    VerifyDocumentHint => "A passport, driver's license or national ID raises your limits to the highest tier.", "جواز السفر أو رخصة القيادة أو الهوية الوطنية يرفع حدودك إلى أعلى مستوى.";
    LegalName => "Legal name", "الاسم القانوني";
    BirthDate => "Date of birth", "تاريخ الميلاد";
    AddressLine => "Address", "العنوان";
    City => "City", "المدينة";
    PostalCode => "Postal code", "الرمز البريدي";
    Country => "Country", "الدولة";
    CountryHint => "Two letters, e.g. US or GB.", "حرفان، مثل US أو GB.";
    State => "State", "الولاية";
    StateHint => "For the US: two letters, e.g. CA.", "للولايات المتحدة: حرفان، مثل CA.";
    SsnLast4 => "Last 4 digits of your SSN", "آخر 4 أرقام من رقم الضمان الاجتماعي";
    SsnLast4Hint => "Required for US residents.", "مطلوب للمقيمين في الولايات المتحدة.";
    Verify => "Verify", "وثّق";
    DocumentType => "Document", "المستند";
    Passport => "Passport", "جواز السفر";
    DriversLicense => "Driver's license", "رخصة القيادة";
    NationalId => "National ID", "الهوية الوطنية";
    DocumentNumber => "Document number", "رقم المستند";
    ErrLegalName => "Enter your full legal name.", "أدخل اسمك القانوني الكامل.";
    ErrBirthDate => "Enter a real date of birth; you must be at least 18.", "أدخل تاريخ ميلاد صحيحًا؛ يجب ألا يقل عمرك عن 18 عامًا.";
    ErrAddress => "Enter your address, city and postal code.", "أدخل عنوانك ومدينتك ورمزك البريدي.";
    ErrResidence => "Enter a country code, and for the US a state code.", "أدخل رمز الدولة، ورمز الولاية للولايات المتحدة.";
    ErrSsnLast4 => "Enter the last 4 digits of your SSN.", "أدخل آخر 4 أرقام من رقم الضمان الاجتماعي.";
    ErrDocument => "Choose a document and enter its number (letters and digits).", "اختر مستندًا وأدخل رقمه (أحرف وأرقام).";
    ErrNotVerified => "We couldn't verify these details. Check them and try again.", "تعذّر التحقق من هذه البيانات. راجعها وحاول مجددًا.";
    Notifications => "Notifications", "الإشعارات";
    UnreadLabel => "unread", "غير مقروءة";
    NoNotifications => "Nothing new. Payments, requests, tips and messages to you show up here.", "لا جديد. تظهر هنا المدفوعات والطلبات والإكراميات والرسائل الموجهة إليك.";
    NoteSentYou => "sent you", "أرسل لك";
    NoteRequested => "asks you for", "يطلب منك";
    NotePaidRequest => "paid your request", "دفع طلبك";
    NoteDeclinedRequest => "declined your request", "رفض طلبك";
    NotePaidDm => "paid to message you:", "دفع لمراسلتك:";
    NoteDmAnswered => "answered your paid message:", "ردّ على رسالتك المدفوعة:";
    NoteDmRefunded => "Your paid message was refunded:", "استُرد مبلغ رسالتك المدفوعة:";
    NoteMessaged => "sent you a message", "أرسل لك رسالة";
    NoteFollowed => "followed you", "بدأ متابعتك";
    NoteCashoutReturned => "Your bank returned a cash-out; back in your wallet:", "أعاد البنك عملية سحب؛ عاد إلى محفظتك:";
    NoteFundingFailed => "A card top-up failed:", "فشلت إضافة رصيد من البطاقة:";
    NoteNewSubscriber => "subscribed to you", "اشترك معك";
    NoteRenewed => "Your subscription renewed:", "جُدّد اشتراكك:";
    NoteRenewalFailed => "We couldn't renew your subscription to", "تعذّر تجديد اشتراكك مع";
    NoteLapsed => "Your subscription ended:", "انتهى اشتراكك:";
    YouSent => "You sent", "أرسلت";
    SentYou => "Sent you", "أرسل لك";
    AskForMoney => "Request money", "اطلب مالًا";
    ErrDocumentUsed => "This document is already used by another account.", "هذا المستند مستخدم في حساب آخر.";
    ErrErased => "Your personal data was erased; it can't be used again.", "حُذفت بياناتك الشخصية ولا يمكن استخدامها مجددًا.";
    SaveCard => "Save as my default card", "احفظها كبطاقتي الافتراضية";
    Feed => "Feed", "المنشورات";
    NoPosts => "No posts yet.", "لا توجد منشورات بعد.";
    NewPost => "Write a post", "اكتب منشورًا";
    Publish => "Post", "انشر";
    ErrPost => "Write 1 to 1,000 characters.", "اكتب من 1 إلى 1000 حرف.";
    Post => "Post", "منشور";
    Posts => "Posts", "المنشورات";
    Tips => "Tips", "الإكراميات";
    TipThis => "Tip this post", "أرسل إكرامية لهذا المنشور";
    TipCreator => "Send a tip", "أرسل إكرامية";
    TipAmount => "Tip", "الإكرامية";
    OtherAmount => "Or another amount", "أو مبلغ آخر";
    PublicNote => "Show my note publicly (the amount stays private)", "اعرض ملاحظتي للجميع (يبقى المبلغ خاصًا)";
    SendTip => "Send tip", "أرسل الإكرامية";
    TipSent => "Tip sent. Thank you!", "تم إرسال الإكرامية. شكرًا!";
    TippedYou => "tipped you", "أرسل لك إكرامية بقيمة";
    Messages => "Messages", "الرسائل";
    Write => "Write", "اكتب";
    Conversations => "Conversations", "المحادثات";
    NoMessages => "No messages yet.", "لا توجد رسائل بعد.";
    PriorityInbox => "Priority inbox (paid DMs)", "البريد المميز (رسائل مدفوعة)";
    AnswerBy => "Answer by", "أجب قبل";
    PaidDms => "Paid DMs", "الرسائل المدفوعة";
    PaidDmsHint => "People you don't follow pay this to message you. You get it when you reply (less a 10% platform cut); if you don't answer in 72 hours they get it back.", "يدفع هذا المبلغ من لا تتابعهم لمراسلتك. تحصل عليه عند الرد (بعد خصم 10% للمنصة)، وإن لم ترد خلال 72 ساعة يُعاد إليهم.";
    DmPrice => "Price to message you", "سعر مراسلتك";
    DmPriceHint => "Leave empty to turn paid DMs off", "اتركه فارغًا لإيقاف الرسائل المدفوعة";
    ErrDmPrice => "Enter a price from 0.01 to 1,000.00.", "أدخل سعرًا من 0.01 إلى 1000.00.";
    DmPending => "waiting for an answer", "بانتظار الرد";
    DmPaid => "answered and paid", "تم الرد والدفع";
    DmDeclined => "declined, refunded", "مرفوضة، أُعيد المبلغ";
    DmExpired => "not answered in time, refunded", "لم يُرد عليها في الوقت، أُعيد المبلغ";
    PaidDm => "Paid DM", "رسالة مدفوعة";
    ReplyToAccept => "reply to accept", "رد للقبول";
    CostsToMessage => "Messaging this person costs", "مراسلة هذا الشخص تكلف";
    CostsHint => "It is held until they answer; if they decline or don't answer in time, you get it back.", "يُحجز المبلغ حتى يردوا؛ وإن رفضوا أو لم يردوا في الوقت يُعاد إليك.";
    Message => "Message", "الرسالة";
    SendMessage => "Send message", "أرسل الرسالة";
    PayAndSend => "Pay and send", "ادفع وأرسل";
    ErrMessage => "Write 1 to 2,000 characters.", "اكتب من 1 إلى 2000 حرف.";
    ErrSelfMessage => "You can't message yourself.", "لا يمكنك مراسلة نفسك.";
    SellSomething => "Sell something here", "بِع شيئًا هنا";
    Item => "Item", "السلعة";
    UnitPrice => "Price each", "سعر الوحدة";
    QuantityAvailable => "Quantity available", "الكمية المتاحة";
    PostCard => "Post checkout card", "انشر بطاقة الشراء";
    Quantity => "Quantity", "الكمية";
    PayNow => "Pay", "ادفع";
    UnitsLeft => "left", "متبقية";
    SoldOut => "Sold out", "نفدت الكمية";
    ErrCheckout => "Check the item (1–80 characters), the price (up to 10,000.00) and the quantity (1–10,000).", "تحقق من السلعة (1–80 حرفًا) والسعر (حتى 10000.00) والكمية (1–10000).";
    ErrConversationFirst => "They have to write to you here first.", "يجب أن يراسلك هنا أولًا.";
    ErrSoldOut => "Not enough left for that.", "لم يتبقَّ ما يكفي لذلك.";
    Orders => "Orders", "الطلبات المشتراة";
    NoOrders => "No orders yet.", "لا توجد طلبات بعد.";
    OrderPaidNotice => "Paid. Your order is below.", "تم الدفع. طلبك أدناه.";
    YouBought => "You bought", "اشتريت";
    YouSold => "You sold", "بعت";
    NoteOffered => "offers you", "يعرض عليك";
    NoteBought => "bought from you for", "اشترى منك بمبلغ";
    NoteOrderPaid => "Your order is paid:", "تم دفع طلبك:";
    TipNotes => "Notes from fans", "رسائل المعجبين";
    Followers => "followers", "متابِعون";
    Following => "following", "يتابع";
    Follow => "Follow", "تابِع";
    Unfollow => "Unfollow", "إلغاء المتابعة";
    EditProfile => "Edit profile", "تعديل الملف الشخصي";
    DisplayName => "Display name", "الاسم المعروض";
    Bio => "Bio (optional)", "نبذة (اختيارية)";
    ErrDisplayName => "Use 1 to 50 characters.", "استخدم من 1 إلى 50 حرفًا.";
    AvatarUrl => "Profile picture (optional)", "صورة الملف الشخصي (اختيارية)";
    AvatarUrlHint => "An https:// link to an image; leave empty for none", "رابط https:// لصورة؛ اتركه فارغًا لعدم وجود صورة";
    ErrAvatarUrl => "Use an https:// link of at most 500 characters.", "استخدم رابط https:// لا يتجاوز 500 حرف.";
    ProfilePicture => "Profile picture", "صورة الملف الشخصي";
    SubscribersOnly => "For subscribers", "للمشتركين";
    SubscribeToRead => "Subscribe to read it", "اشترك لقراءته";
    ForSubscribersOnly => "Only my subscribers may read this post", "لا يقرأ هذا المنشور إلا مشتركيّ";
    MinimumTier => "Lowest tier that may read it", "أدنى فئة يمكنها قراءته";
    AnyTier => "Any tier", "أي فئة";
    Tiers => "Subscription tiers", "فئات الاشتراك";
    NoTiers => "No subscription tiers yet.", "لا توجد فئات اشتراك بعد.";
    Subscribe => "Subscribe", "اشترك";
    AMonth => "a month", "شهريًا";
    ConfirmSubscription => "Confirm your subscription", "أكّد اشتراكك";
    SubscribeTerms => "You pay this from your wallet now, and again every 30 days until you cancel. Canceling stops the next charge; you keep access until the end of the period you paid for.", "تدفع هذا المبلغ من محفظتك الآن ثم كل 30 يومًا حتى تلغي. الإلغاء يوقف الدفعة التالية، ويبقى وصولك حتى نهاية الفترة المدفوعة.";
    ConfirmAndPay => "Subscribe and pay", "اشترك وادفع";
    Subscribed => "You are subscribed.", "تم اشتراكك.";
    YourSubscriptions => "Your subscriptions", "اشتراكاتك";
    NoSubscriptions => "You have no subscriptions.", "ليس لديك اشتراكات.";
    YourSubscribers => "Your subscribers", "مشتركوك";
    NoSubscribers => "No subscribers yet.", "لا مشتركين بعد.";
    CancelSubscription => "Cancel subscription", "ألغِ الاشتراك";
    SubscriptionCanceled => "Canceled. You keep access until the end of the paid period.", "تم الإلغاء. يبقى وصولك حتى نهاية الفترة المدفوعة.";
    RenewsOn => "Renews on", "يتجدد في";
    EndsOn => "Ends on", "ينتهي في";
    GraceUntil => "Payment failed; add money before", "فشل الدفع؛ أضف رصيدًا قبل";
    StatusActive => "active", "نشط";
    StatusGrace => "payment due", "الدفع مستحق";
    StatusCanceled => "canceled", "ملغى";
    StatusLapsed => "lapsed", "منتهٍ";
    ManageTiers => "Your tiers", "فئاتك";
    NewTier => "New tier", "فئة جديدة";
    TierName => "Tier name", "اسم الفئة";
    TierPrice => "Price a month (USD)", "السعر الشهري (دولار)";
    TierPerks => "Perks (optional)", "المزايا (اختيارية)";
    CreateTier => "Create tier", "أنشئ الفئة";
    RetireTier => "Retire", "أوقف الفئة";
    Retired => "retired: no new subscribers", "موقوفة: لا مشتركين جدد";
    ErrTierName => "Use 1 to 40 characters on one line.", "استخدم من 1 إلى 40 حرفًا في سطر واحد.";
    ErrTierPrice => "Enter a price from 0.01 to 1,000.00.", "أدخل سعرًا من 0.01 إلى 1000.00.";
    ErrTierPerks => "Use at most 500 characters.", "استخدم 500 حرف على الأكثر.";
    ErrTooManyTiers => "You have reached 10 tiers.", "وصلت إلى 10 فئات.";
    ErrAlreadySubscribed => "You already subscribe to this creator.", "أنت مشترك بالفعل لدى هذا المبدع.";
    ErrTierRetired => "This tier takes no new subscribers.", "هذه الفئة لا تقبل مشتركين جددًا.";
    Subscriptions => "Subscriptions", "الاشتراكات";
}

const ARABIC_DIGITS: [char; 10] = ['٠', '١', '٢', '٣', '٤', '٥', '٦', '٧', '٨', '٩'];

/// `digits` (ASCII) in the language's numerals.
pub fn numerals(lang: Lang, text: &str) -> String {
    match lang {
        Lang::En => text.to_owned(),
        Lang::Ar => text
            .chars()
            .map(|c| match c.to_digit(10) {
                Some(digit) => ARABIC_DIGITS[digit as usize],
                None => c,
            })
            .collect(),
    }
}

/// An amount as a person typed it, in the ASCII the money parser reads: Arabic-Indic
/// (`٠`–`٩`) and Persian (`۰`–`۹`) digits become `0`–`9`, the Arabic decimal separator
/// `٫` a `.` and the Arabic thousands separator `٬` a `,`, and the invisible direction
/// marks a right-to-left keyboard or a paste may add are dropped. Everything else is
/// kept as typed, so malformed text stays malformed.
pub fn ascii_amount(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\u{200e}' | '\u{200f}' | '\u{61c}'))
        .map(|c| match c {
            '\u{660}'..='\u{669}' => ascii_digit(u32::from(c) - 0x660),
            '\u{6f0}'..='\u{6f9}' => ascii_digit(u32::from(c) - 0x6f0),
            '٫' => '.',
            '٬' => ',',
            other => other,
        })
        .collect()
}

/// `0`–`9` for a digit value below ten.
fn ascii_digit(value: u32) -> char {
    char::from_digit(value, 10).unwrap_or('?')
}

/// A positive amount in the wallet currency from what a person typed into a form,
/// in either language's digits (see [`ascii_amount`]). Every web form that takes an
/// amount reads it through here.
pub fn typed_amount(text: &str) -> Result<Money, PaymentError> {
    payments::parse_amount(&ascii_amount(text), WALLET_CURRENCY.code())
}

/// An amount a use case answered as text (`"12.50"`, `"USD"`), formatted like
/// [`money`]; text that does not parse is shown as it came.
pub fn stored_money(lang: Lang, amount: &str, currency: &str) -> String {
    payments::parse_amount(amount, currency)
        .map(|money| self::money(lang, money))
        .unwrap_or_else(|_| amount.to_owned())
}

/// An amount for people: `$1,234.56` in English, `١٬٢٣٤٫٥٦ US$` in Arabic.
pub fn money(lang: Lang, amount: Money) -> String {
    let currency = amount.currency();
    let major = amount.format_major();
    let (sign, digits) = match major.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", major.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    // `format_major` groups with commas; regroup with the language's separator.
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    let (group, decimal) = match lang {
        Lang::En => (',', '.'),
        Lang::Ar => ('٬', '٫'),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (index, c) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index).is_multiple_of(3) {
            grouped.push(group);
        }
        grouped.push(c);
    }
    let mut number = grouped;
    if !fraction.is_empty() {
        number.push(decimal);
        number.push_str(fraction);
    }
    let number = numerals(lang, &number);
    match lang {
        Lang::En => match symbol_en(currency) {
            Some(symbol) => format!("{sign}{symbol}{number}"),
            None => format!("{sign}{} {number}", currency.code()),
        },
        // U+061C (Arabic letter mark) keeps the sign on the right side in RTL text.
        Lang::Ar => {
            let sign = if sign.is_empty() { "" } else { "\u{61c}-" };
            format!("{sign}{number}\u{a0}{}", symbol_ar(currency))
        }
    }
}

fn symbol_en(currency: Currency) -> Option<&'static str> {
    match currency.code() {
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

fn symbol_ar(currency: Currency) -> &'static str {
    match currency.code() {
        "USD" => "US$",
        "EUR" => "€",
        "GBP" => "UK£",
        "SAR" => "ر.س.‏",
        "AED" => "د.إ.‏",
        "EGP" => "ج.م.‏",
        "KWD" => "د.ك.‏",
        "BHD" => "د.ب.‏",
        other => other,
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_AR: [&str; 12] = [
    "يناير",
    "فبراير",
    "مارس",
    "أبريل",
    "مايو",
    "يونيو",
    "يوليو",
    "أغسطس",
    "سبتمبر",
    "أكتوبر",
    "نوفمبر",
    "ديسمبر",
];

/// The words for `limit_exceeded`: which limit (`daily_send`, `weekly_send`,
/// `weekly_cashout`, `weekly_funding`) and when it resets (RFC 3339 UTC).
pub fn limit_exceeded(lang: Lang, limit: &str, resets_at: &str) -> String {
    let when = date_time(lang, resets_at);
    let (en, ar) = match limit {
        "daily_send" => ("daily sending limit", "حد الإرسال اليومي"),
        "weekly_send" => ("weekly sending limit", "حد الإرسال الأسبوعي"),
        "weekly_cashout" => ("weekly cash-out limit", "حد السحب الأسبوعي"),
        "weekly_funding" => ("weekly limit for adding money", "حد الإضافة الأسبوعي"),
        _ => ("limit", "الحد"),
    };
    match lang {
        Lang::En => format!(
            "That would go over your {en}, which resets {when}. Verify your identity to raise it."
        ),
        Lang::Ar => format!("هذا يتجاوز {ar}، ويُعاد ضبطه في {when}. وثّق هويتك لرفعه."),
    }
}

/// `21 Nov 2026, 14:03 UTC` from RFC 3339 UTC text (`2026-11-21T14:03:09Z`); text in
/// another shape is shown as it is.
pub fn date_time(lang: Lang, rfc3339: &str) -> String {
    let parts = (
        rfc3339.get(0..4),
        rfc3339.get(5..7).and_then(|m| m.parse::<usize>().ok()),
        rfc3339.get(8..10).and_then(|d| d.parse::<u8>().ok()),
        rfc3339.get(11..16),
    );
    let (Some(year), Some(month @ 1..=12), Some(day), Some(time)) = parts else {
        return rfc3339.to_owned();
    };
    match lang {
        Lang::En => format!("{day} {} {year}, {time} UTC", MONTHS_EN[month - 1]),
        Lang::Ar => numerals(
            lang,
            &format!("{day} {} {year}، {time} ‏UTC", MONTHS_AR[month - 1]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_and_written_in_each_language() {
        let amount = Money::from_minor(123_456_789, Currency::USD);
        assert_eq!(money(Lang::En, amount), "$1,234,567.89");
        assert_eq!(money(Lang::Ar, amount), "١٬٢٣٤٬٥٦٧٫٨٩\u{a0}US$");
        assert_eq!(
            money(Lang::En, Money::from_minor(5, Currency::USD)),
            "$0.05"
        );
        assert_eq!(
            money(Lang::En, Money::from_minor(-100_000, Currency::USD)),
            "-$1,000.00"
        );
        assert_eq!(
            money(Lang::En, Money::from_minor(1_234_500, Currency::KWD)),
            "KWD 1,234.500"
        );
        assert_eq!(
            money(Lang::En, Money::from_minor(1_234, Currency::JPY)),
            "¥1,234"
        );
        assert_eq!(
            money(Lang::Ar, Money::from_minor(100, Currency::SAR)),
            "١٫٠٠\u{a0}ر.س.‏"
        );
    }

    #[test]
    fn amounts_typed_with_arabic_or_persian_digits_parse_like_ascii_ones() {
        let cents = |text: &str| typed_amount(text).map(Money::minor_units);
        assert_eq!(cents("12.50"), Ok(1_250));
        assert_eq!(cents("١٢٫٥٠"), Ok(1_250));
        assert_eq!(cents("۱۲٫۵۰"), Ok(1_250));
        assert_eq!(cents("١٬٢٣٤٫٥٠"), Ok(123_450));
        assert_eq!(cents("\u{200f}٥\u{61c}"), Ok(500));
        // Mixed with ASCII, as a keyboard switched mid-way types it.
        assert_eq!(cents("1٢.5٠"), Ok(1_250));
        assert_eq!(ascii_amount("٠١٢٣٤٥٦٧٨٩"), "0123456789");
        assert_eq!(ascii_amount("۰۱۲۳۴۵۶۷۸۹"), "0123456789");
        // What the ASCII parser refuses stays refused.
        assert_eq!(cents("١٢٫٥٠٫٠"), Err(PaymentError::AmountMalformed));
        assert_eq!(cents("١٢٫٥٠٥"), Err(PaymentError::AmountTooPrecise));
        assert_eq!(cents("٠"), Err(PaymentError::AmountMustBePositive));
        assert_eq!(cents("١٢ دولار"), Err(PaymentError::AmountMalformed));
        assert_eq!(cents(""), Err(PaymentError::AmountMalformed));
    }

    #[test]
    fn the_limit_error_names_the_limit_and_when_it_resets() {
        let text = limit_exceeded(Lang::En, "weekly_send", "2026-11-23T00:00:00Z");
        assert_eq!(
            text,
            "That would go over your weekly sending limit, which resets 23 Nov 2026, 00:00 UTC. Verify your identity to raise it."
        );
        let arabic = limit_exceeded(Lang::Ar, "daily_send", "2026-11-23T00:00:00Z");
        assert!(arabic.contains("حد الإرسال اليومي"), "{arabic}");
        assert!(arabic.contains("UTC"), "{arabic}");
    }

    #[test]
    fn dates_read_naturally_and_odd_text_passes_through() {
        assert_eq!(
            date_time(Lang::En, "2026-11-21T14:03:09Z"),
            "21 Nov 2026, 14:03 UTC"
        );
        assert_eq!(
            date_time(Lang::Ar, "2026-03-05T09:00:00Z"),
            "٥ مارس ٢٠٢٦، ٠٩:٠٠ ‏UTC"
        );
        assert_eq!(date_time(Lang::En, "yesterday"), "yesterday");
        assert_eq!(
            date_time(Lang::En, "2026-13-05T09:00:00Z"),
            "2026-13-05T09:00:00Z"
        );
    }

    #[test]
    fn the_browser_language_picks_arabic_only_when_asked_first() {
        assert_eq!(
            Lang::from_accept_language("ar-SA,ar;q=0.9,en;q=0.8"),
            Lang::Ar
        );
        assert_eq!(Lang::from_accept_language("fr-FR, ar;q=0.5"), Lang::Ar);
        assert_eq!(Lang::from_accept_language("en-US,ar;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn every_text_exists_in_both_languages() {
        for text in ALL_TEXTS {
            assert!(!text.get(Lang::En).is_empty(), "{text:?}");
            assert!(!text.get(Lang::Ar).is_empty(), "{text:?}");
            assert_ne!(text.get(Lang::En), text.get(Lang::Ar), "{text:?}");
        }
    }
}
